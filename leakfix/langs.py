"""Language profiles (data, not branches): which scripts are native, which characters and words
give a wrong language away, and the fastText labels. Plus fast per-character script lookup.
"""

from __future__ import annotations

import bisect
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

# (first code point, last code point, script), sorted; anything else with a letter category is
# looked up through unicodedata's name (rare scripts), everything else is "Common".
_RANGES: list[tuple[int, int, str]] = sorted(
    [
        (0x0041, 0x005A, "Latin"), (0x0061, 0x007A, "Latin"), (0x00C0, 0x024F, "Latin"), (0x1E00, 0x1EFF, "Latin"),
        (0xFF21, 0xFF3A, "Latin"), (0xFF41, 0xFF5A, "Latin"),
        (0x0370, 0x03FF, "Greek"), (0x1F00, 0x1FFF, "Greek"),
        (0x0400, 0x052F, "Cyrillic"),
        (0x0590, 0x05FF, "Hebrew"),
        (0x0600, 0x06FF, "Arabic"), (0x0750, 0x077F, "Arabic"), (0xFB50, 0xFDFF, "Arabic"), (0xFE70, 0xFEFF, "Arabic"),
        (0x0900, 0x097F, "Devanagari"),
        (0x0E00, 0x0E7F, "Thai"),
        (0x1100, 0x11FF, "Hangul"), (0x3130, 0x318F, "Hangul"), (0xAC00, 0xD7AF, "Hangul"), (0xFFA0, 0xFFDC, "Hangul"),
        (0x3040, 0x309F, "Hiragana"),
        (0x30A0, 0x30FF, "Katakana"), (0x31F0, 0x31FF, "Katakana"), (0xFF66, 0xFF9F, "Katakana"),
        (0x3400, 0x4DBF, "Han"), (0x4E00, 0x9FFF, "Han"), (0xF900, 0xFAFF, "Han"), (0x20000, 0x3FFFF, "Han"),
        (0x3005, 0x3007, "Han"),  # 々 〆 〇
    ]
)
_STARTS = [r[0] for r in _RANGES]


@lru_cache(maxsize=65536)
def char_script(ch: str) -> str:
    """Script of one character: 'Latin', 'Han', 'Hiragana', ... or 'Common' (digits, punctuation, spaces)."""
    cp = ord(ch)
    i = bisect.bisect_right(_STARTS, cp) - 1
    if i >= 0 and cp <= _RANGES[i][1]:
        return _RANGES[i][2]
    if cp == 0x30FC:  # ー prolonged sound mark: Japanese kana
        return "Katakana"
    if unicodedata.category(ch).startswith("L"):
        return unicodedata.name(ch, "UNKNOWN").split(" ")[0].title()
    return "Common"


def is_japanese_han(ch: str) -> bool:
    """A Han character Japanese writes: encodable in JIS X 0208/0213 (Simplified-only forms are not)."""
    try:
        ch.encode("euc_jis_2004")
        return True
    except UnicodeEncodeError:
        return False


@dataclass(frozen=True)
class LangProfile:
    code: str
    name: str
    scripts: frozenset[str]  # letters of these scripts are native
    fasttext: tuple[str, ...]  # fastText labels that count as this language
    # Han characters need a second look: in Japanese, Simplified-only forms are foreign.
    han_check: str | None = None
    # Words written only with native characters that still give another language away (但是 in ja).
    foreign_words: frozenset[str] = field(default_factory=frozenset)


def _p(code, name, scripts, ft, han_check=None, words=()):
    return LangProfile(code, name, frozenset(scripts), tuple(ft), han_check, frozenset(words))


# Chinese function words made of characters Japanese also has: only word-level knowledge catches them.
_ZH_WORDS_IN_JA = ["但是", "而且", "所以", "因为", "我们", "你们", "他们", "这个", "那个", "什么", "没有", "可以", "例如", "已经", "非常", "一个", "就是", "还是", "不是", "的话", "如果"]

PROFILES: dict[str, LangProfile] = {
    p.code: p
    for p in [
        _p("ja", "Japanese", {"Han", "Hiragana", "Katakana"}, ["ja"], han_check="japanese", words=_ZH_WORDS_IN_JA),
        _p("ko", "Korean", {"Hangul"}, ["ko"]),
        _p("zh", "Chinese", {"Han"}, ["zh", "wuu", "yue"]),
        _p("zh-Hans", "Chinese (Simplified)", {"Han"}, ["zh", "wuu"]),
        _p("zh-Hant", "Chinese (Traditional)", {"Han"}, ["zh", "yue"]),
        _p("ru", "Russian", {"Cyrillic"}, ["ru"]),
        _p("uk", "Ukrainian", {"Cyrillic"}, ["uk"]),
        _p("bg", "Bulgarian", {"Cyrillic"}, ["bg"]),
        _p("el", "Greek", {"Greek"}, ["el"]),
        _p("he", "Hebrew", {"Hebrew"}, ["he"]),
        _p("ar", "Arabic", {"Arabic"}, ["ar", "arz"]),
        _p("fa", "Persian", {"Arabic"}, ["fa"]),
        _p("hi", "Hindi", {"Devanagari"}, ["hi", "mr", "ne"]),
        _p("th", "Thai", {"Thai"}, ["th"]),
        _p("en", "English", {"Latin"}, ["en"]),
        _p("fr", "French", {"Latin"}, ["fr"]),
        _p("de", "German", {"Latin"}, ["de"]),
        _p("es", "Spanish", {"Latin"}, ["es"]),
        _p("it", "Italian", {"Latin"}, ["it"]),
        _p("pt", "Portuguese", {"Latin"}, ["pt"]),
        _p("vi", "Vietnamese", {"Latin"}, ["vi"]),
        _p("id", "Indonesian", {"Latin"}, ["id", "ms"]),
        _p("tr", "Turkish", {"Latin"}, ["tr"]),
        _p("pl", "Polish", {"Latin"}, ["pl"]),
    ]
}


def get_profile(lang: str) -> LangProfile:
    try:
        return PROFILES[lang]
    except KeyError:
        raise ValueError(f"unknown language {lang!r}; known: {', '.join(sorted(PROFILES))}") from None


def char_is_native(ch: str, profile: LangProfile) -> bool:
    s = char_script(ch)
    if s not in profile.scripts:
        return False
    if s == "Han" and profile.han_check == "japanese":
        return is_japanese_han(ch)
    return True


def token_class(text: str, lang: str) -> str:
    """'native' (has letters, all acceptable in `lang`), 'neutral' (no letters: punctuation,
    digits, spaces, a byte fragment) or 'foreign'. Used to pick in-language replacement tokens."""
    profile = get_profile(lang)
    letters = [c for c in text if char_script(c) != "Common"]
    if not letters:
        return "neutral"
    if not all(char_is_native(c, profile) for c in letters):
        return "foreign"
    if profile.foreign_words and any(w in text for w in profile.foreign_words):
        return "foreign"
    return "native"
