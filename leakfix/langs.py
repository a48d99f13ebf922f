"""Language knowledge as data: scripts per code point, and per language which scripts are
native, which characters and words of a native script still give another language away, and
the fastText labels that count as the language.

`char_script` is a table lookup (built once at import from the Unicode blocks below and the
character categories), and `script_class` / `foreign_class` give the same knowledge as regex
character classes, so the detector scans a text with one compiled regex instead of a Python
loop per character.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

# Unicode blocks (first, last, script). Inside a block only letters and marks take the block's
# script; digits, punctuation and symbols stay "Common". A "Common" entry forces Common (letter-like
# symbols such as µ or ℃ are not words). Letters of blocks not listed fall back to the first word of
# their Unicode name ("YI SYLLABLE …" -> "Yi").
BLOCKS: list[tuple[int, int, str]] = [
    (0x0041, 0x005A, "Latin"), (0x0061, 0x007A, "Latin"), (0x00AA, 0x00AA, "Latin"), (0x00B5, 0x00B5, "Common"),
    (0x00BA, 0x00BA, "Latin"), (0x00C0, 0x024F, "Latin"), (0x0250, 0x02AF, "Latin"), (0x02B0, 0x02FF, "Common"),
    (0x0300, 0x036F, "Common"),  # combining diacritics: joiners, not letters of their own
    (0x0370, 0x03FF, "Greek"), (0x0400, 0x052F, "Cyrillic"), (0x0530, 0x058F, "Armenian"), (0x0590, 0x05FF, "Hebrew"),
    (0x0600, 0x06FF, "Arabic"), (0x0700, 0x074F, "Syriac"), (0x0750, 0x077F, "Arabic"), (0x0780, 0x07BF, "Thaana"),
    (0x0870, 0x08FF, "Arabic"), (0x0900, 0x097F, "Devanagari"), (0x0980, 0x09FF, "Bengali"), (0x0A00, 0x0A7F, "Gurmukhi"),
    (0x0A80, 0x0AFF, "Gujarati"), (0x0B00, 0x0B7F, "Oriya"), (0x0B80, 0x0BFF, "Tamil"), (0x0C00, 0x0C7F, "Telugu"),
    (0x0C80, 0x0CFF, "Kannada"), (0x0D00, 0x0D7F, "Malayalam"), (0x0D80, 0x0DFF, "Sinhala"), (0x0E00, 0x0E7F, "Thai"),
    (0x0E80, 0x0EFF, "Lao"), (0x0F00, 0x0FFF, "Tibetan"), (0x1000, 0x109F, "Myanmar"), (0x10A0, 0x10FF, "Georgian"),
    (0x1100, 0x11FF, "Hangul"), (0x1200, 0x139F, "Ethiopic"), (0x1780, 0x17FF, "Khmer"), (0x1800, 0x18AF, "Mongolian"),
    (0x1AB0, 0x1AFF, "Common"), (0x1C80, 0x1C8F, "Cyrillic"), (0x1C90, 0x1CBF, "Georgian"), (0x1D00, 0x1DBF, "Latin"),
    (0x1DC0, 0x1DFF, "Common"), (0x1E00, 0x1EFF, "Latin"), (0x1F00, 0x1FFF, "Greek"), (0x2000, 0x2BFF, "Common"),
    (0x2C60, 0x2C7F, "Latin"), (0x2D00, 0x2D2F, "Georgian"), (0x2DE0, 0x2DFF, "Cyrillic"), (0x2E80, 0x2FFF, "Common"),
    (0x3000, 0x3004, "Common"), (0x3005, 0x3006, "Han"), (0x3007, 0x303A, "Common"), (0x303B, 0x303B, "Han"),
    (0x303C, 0x303F, "Common"), (0x3040, 0x309F, "Hiragana"), (0x30A0, 0x30FF, "Katakana"), (0x3100, 0x312F, "Bopomofo"),
    (0x3130, 0x318F, "Hangul"), (0x31A0, 0x31BF, "Bopomofo"), (0x31F0, 0x31FF, "Katakana"), (0x3200, 0x33FF, "Common"),
    (0x3400, 0x4DBF, "Han"), (0x4E00, 0x9FFF, "Han"), (0xA640, 0xA69F, "Cyrillic"), (0xA720, 0xA7FF, "Latin"),
    (0xA8E0, 0xA8FF, "Devanagari"), (0xA960, 0xA97F, "Hangul"), (0xAB30, 0xAB6F, "Latin"), (0xAC00, 0xD7FF, "Hangul"),
    (0xD800, 0xF8FF, "Common"), (0xF900, 0xFAFF, "Han"), (0xFB00, 0xFB06, "Latin"), (0xFB13, 0xFB17, "Armenian"), (0xFB1D, 0xFB4F, "Hebrew"),
    (0xFB50, 0xFDFF, "Arabic"), (0xFE00, 0xFE6F, "Common"), (0xFE70, 0xFEFF, "Arabic"), (0xFF00, 0xFF20, "Common"),
    (0xFF21, 0xFF3A, "Latin"), (0xFF41, 0xFF5A, "Latin"), (0xFF66, 0xFF9F, "Katakana"), (0xFFA0, 0xFFDC, "Hangul"),
]
# Beyond the BMP only Han is common in LLM output (extensions B–H); other astral letters are
# looked up by name in `char_script` but are not part of the regex classes.
ASTRAL_HAN = [(0x20000, 0x2FA1F), (0x30000, 0x323AF)]

# Scripts written without spaces between words: a foreign character is not extended to a "word".
UNSPACED = frozenset({"Han", "Hiragana", "Katakana", "Bopomofo", "Thai", "Lao", "Khmer", "Myanmar", "Tibetan"})
# Scripts with upper/lower case: capitalisation is evidence (acronyms, proper nouns).
CASED = frozenset({"Latin", "Cyrillic", "Greek", "Armenian"})
# Weight of one letter when measuring how much of a response is foreign: an ideograph or a Hangul
# syllable carries about as much as two Latin letters (a kana about one).
SCRIPT_WEIGHT: dict[str, float] = {"Han": 2.0, "Hangul": 2.0}

# Adverbs and connectives that leak into other languages as whole words. A capitalised span that
# starts with one of them is not a proper noun ("However" at a sentence start is still a leak).
LEAK_PRONE_WORDS = frozenset(
    """however ultimately therefore also especially usually actually finally moreover furthermore additionally
    meanwhile overall basically generally indeed instead otherwise perhaps probably really so but and or because
    although though while then thus hence yes no ok okay well first second third next last example for in on at
    of to with by from as if when where which what who how why this that these those it its they we you he she
    is are was were be been not all some many most more very just only still even already often sometimes always
    never again conclusion summary note important eventually specifically including namely simply clearly certainly
    definitely obviously similarly likewise consequently accordingly nevertheless nonetheless regardless besides
    alternatively ideally typically normally mainly mostly the a an""".split()
)


def _build_bmp() -> tuple[bytearray, list[str]]:
    names = ["Common"]
    ids = bytearray(0x10000)
    category, covered = unicodedata.category, bytearray(0x10000)
    for a, b, script in BLOCKS:
        covered[a : b + 1] = b"\x01" * (b - a + 1)
        if script == "Common":
            continue
        if script not in names:
            names.append(script)
        sid = names.index(script)
        for cp in range(a, b + 1):
            if category(chr(cp))[0] in "LM":
                ids[cp] = sid
    for cp in range(0x10000):
        if not covered[cp] and category(chr(cp)) in ("Lo", "Lu", "Ll", "Lt"):
            script = unicodedata.name(chr(cp), "COMMON").split(" ")[0].title()
            if script not in names:
                names.append(script)
            ids[cp] = names.index(script)
    return ids, names


_IDS, _NAMES = _build_bmp()


def char_script(ch: str) -> str:
    """Script of one character: "Latin", "Han", "Hiragana", "Katakana", "Hangul", "Cyrillic", …, or
    "Common" for digits, punctuation, spaces, symbols and combining marks outside a script block."""
    cp = ord(ch)
    if cp < 0x10000:
        return _NAMES[_IDS[cp]]
    return _astral_script(cp)


@lru_cache(maxsize=4096)
def _astral_script(cp: int) -> str:
    if any(a <= cp <= b for a, b in ASTRAL_HAN):
        return "Han"
    ch = chr(cp)
    if unicodedata.category(ch)[0] != "L" or 0x1D400 <= cp <= 0x1D7FF:  # math letters are symbols
        return "Common"
    return unicodedata.name(ch, "COMMON").split(" ")[0].title()


def _cls(ranges: list[tuple[int, int]]) -> str:
    """Body of a regex character class for inclusive code point ranges."""
    esc = lambda cp: f"\\U{cp:08x}" if cp > 0xFFFF else f"\\u{cp:04x}"
    return "".join(esc(a) if a == b else f"{esc(a)}-{esc(b)}" for a, b in ranges)


@lru_cache(maxsize=1)
def _bmp_ranges() -> dict[str, list[tuple[int, int]]]:
    """Consecutive code points of one script, per script (one pass over the table)."""
    out: dict[str, list[tuple[int, int]]] = {n: [] for n in _NAMES}
    start = 0
    for cp in range(1, 0x10001):
        if cp == 0x10000 or _IDS[cp] != _IDS[start]:
            out[_NAMES[_IDS[start]]].append((start, cp - 1))
            start = cp
    return out


def script_ranges(script: str) -> list[tuple[int, int]]:
    return _bmp_ranges().get(script, []) + (ASTRAL_HAN if script == "Han" else [])


def script_class(*scripts: str) -> str:
    """Regex character class body matching the letters of `scripts`."""
    return "".join(_cls(script_ranges(s)) for s in scripts)


def all_scripts() -> list[str]:
    return [n for n in _NAMES if n != "Common"]


# ---------------------------------------------------------------------------------------------
# Han forms. One ideograph set is shared by Chinese and Japanese, but each writes its own forms:
# Japanese has no Simplified-only characters (们, 终, 经), Simplified Chinese no Traditional-only
# ones (們, 這) and the reverse. The legacy national character sets encode exactly these choices,
# so "is this form native" is "does it encode" — no hand-made list to maintain.
def _encodes(ch: str, codec: str) -> bool:
    try:
        ch.encode(codec)
        return True
    except UnicodeEncodeError:
        return False


HAN_FORMS = {
    # JIS X 0208/0213 plus the Windows (NEC/IBM) extensions.
    "ja": lambda ch: _encodes(ch, "euc_jis_2004") or _encodes(ch, "cp932"),
    # foreign = Traditional-only: in Big5 but not in GB2312
    "hans": lambda ch: not (_encodes(ch, "cp950") and not _encodes(ch, "gb2312")),
    # foreign = Simplified-only: in GB2312 but not in Big5
    "hant": lambda ch: not (_encodes(ch, "gb2312") and not _encodes(ch, "cp950")),
}


@lru_cache(maxsize=65536)
def han_ok(ch: str, forms: str | None) -> bool:
    """Whether a Han character is written in a language with Han `forms` ("ja", "hans", "hant",
    None = any). Astral Han (rare characters) counts as native."""
    return forms is None or ord(ch) > 0xFFFF or HAN_FORMS[forms](ch)


def is_japanese_han(ch: str) -> bool:
    """A Han character Japanese writes (has a JIS X 0208/0213 form); 们/终/经 do not."""
    return han_ok(ch, "ja")


# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LangProfile:
    code: str
    name: str
    scripts: frozenset[str]  # letters of these scripts are native
    fasttext: tuple[str, ...]  # fastText labels that count as this language
    han_forms: str | None = None  # which Han forms are native (see HAN_FORMS); None: any
    foreign_letters: str = ""  # letters of a native script that belong to a sibling language (ы in Ukrainian)
    foreign_words: tuple[str, ...] = ()  # words of native characters that belong to another language (但是 in Japanese)

    @property
    def spaced(self) -> bool:
        return not (self.scripts & UNSPACED)


# Chinese words written only with characters Japanese also has (the character test cannot see
# them), plus common Chinese words holding a Simplified-only character, so the span covers the
# whole word (最终, not just 终). Not here: words that are also Japanese (非常, 可能, 自己, 不要, 如何).
ZH_WORDS_IN_JA = (
    "但是 而且 例如 所以 因为 我们 你们 他们 这个 那个 什么 没有 可以 如果 就是 不是 也是 一个 或者 比如 并且 其实 然后 "
    "只要 不会 很多 怎么 那么 这样 还是 还有 已经 最终 经常 特别 虽然 因此 为什么 时候 的话 的是 是的"
).split()
_RU_ONLY = "ыэъёЫЭЪЁ"
_UK_ONLY = "іїєґІЇЄҐ"


def _p(code: str, name: str, scripts: set[str], ft: list[str], **kw) -> LangProfile:
    if "foreign_words" in kw:
        kw["foreign_words"] = tuple(sorted(kw["foreign_words"], key=len, reverse=True))  # longest match first
    return LangProfile(code, name, frozenset(scripts), tuple(ft), **kw)


PROFILES: dict[str, LangProfile] = {
    p.code: p
    for p in [
        _p("ja", "Japanese", {"Han", "Hiragana", "Katakana"}, ["ja"], han_forms="ja", foreign_words=ZH_WORDS_IN_JA),
        _p("ko", "Korean", {"Hangul"}, ["ko"]),
        _p("zh", "Chinese", {"Han", "Bopomofo"}, ["zh", "wuu", "yue"]),
        _p("zh-Hans", "Chinese (Simplified)", {"Han"}, ["zh", "wuu"], han_forms="hans"),
        _p("zh-Hant", "Chinese (Traditional)", {"Han", "Bopomofo"}, ["zh", "yue"], han_forms="hant"),
        _p("ru", "Russian", {"Cyrillic"}, ["ru"], foreign_letters=_UK_ONLY),
        _p("uk", "Ukrainian", {"Cyrillic"}, ["uk"], foreign_letters=_RU_ONLY),
        _p("bg", "Bulgarian", {"Cyrillic"}, ["bg"], foreign_letters="ыэёЫЭЁ" + _UK_ONLY),
        _p("el", "Greek", {"Greek"}, ["el"]),
        _p("he", "Hebrew", {"Hebrew"}, ["he"]),
        _p("ar", "Arabic", {"Arabic"}, ["ar", "arz"]),
        _p("fa", "Persian", {"Arabic"}, ["fa"]),
        _p("hi", "Hindi", {"Devanagari"}, ["hi"]),
        _p("bn", "Bengali", {"Bengali"}, ["bn"]),
        _p("ta", "Tamil", {"Tamil"}, ["ta"]),
        _p("th", "Thai", {"Thai"}, ["th"]),
        _p("en", "English", {"Latin"}, ["en"]),
        _p("fr", "French", {"Latin"}, ["fr"]),
        _p("de", "German", {"Latin"}, ["de"]),
        _p("es", "Spanish", {"Latin"}, ["es"]),
        _p("it", "Italian", {"Latin"}, ["it"]),
        _p("pt", "Portuguese", {"Latin"}, ["pt"]),
        _p("nl", "Dutch", {"Latin"}, ["nl"]),
        _p("pl", "Polish", {"Latin"}, ["pl"]),
        _p("tr", "Turkish", {"Latin"}, ["tr"]),
        _p("vi", "Vietnamese", {"Latin"}, ["vi"]),
        _p("id", "Indonesian", {"Latin"}, ["id", "ms"]),
    ]
}


def get_profile(lang: str) -> LangProfile:
    try:
        return PROFILES[lang]
    except KeyError:
        raise ValueError(f"unknown language {lang!r}; known: {', '.join(sorted(PROFILES))}") from None


def char_is_native(ch: str, profile: LangProfile) -> bool:
    """A letter acceptable in the profile's language (call it on letters: Common is not native)."""
    s = char_script(ch)
    if s not in profile.scripts or ch in profile.foreign_letters:
        return False
    return s != "Han" or han_ok(ch, profile.han_forms)


@lru_cache(maxsize=None)
def foreign_han(lang: str) -> tuple[tuple[int, int], ...]:
    """Ranges of BMP Han characters whose form the language does not write (empty if any form)."""
    p = get_profile(lang)
    if "Han" not in p.scripts or p.han_forms is None:
        return ()
    bmp_han = _bmp_ranges()["Han"]
    bad = [cp for a, b in bmp_han for cp in range(a, b + 1) if not HAN_FORMS[p.han_forms](chr(cp))]
    out: list[tuple[int, int]] = []
    for cp in bad:
        if out and out[-1][1] == cp - 1:
            out[-1] = (out[-1][0], cp)
        else:
            out.append((cp, cp))
    return tuple(out)


@lru_cache(maxsize=None)
def foreign_class(lang: str) -> str:
    """Regex character class body of letters in scripts that are not native to `lang`."""
    p = get_profile(lang)
    return script_class(*[s for s in all_scripts() if s not in p.scripts])


def token_class(text: str, lang: str) -> str:
    """"native" if `text` has a letter and every letter is acceptable in `lang`, "neutral" if it has
    no letter (punctuation, digits, spaces, a partial UTF-8 byte shown as U+FFFD), else "foreign".
    A token holding a whole foreign word of native characters (但是 for ja) is foreign too."""
    profile = get_profile(lang)
    has_letter = False
    for ch in text:
        if char_script(ch) == "Common":
            continue
        has_letter = True
        if not char_is_native(ch, profile):
            return "foreign"
    if not has_letter:
        return "neutral"
    if profile.foreign_words and any(w in text for w in profile.foreign_words):
        return "foreign"
    return "native"
