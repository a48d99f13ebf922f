import re

import pytest

from leakfix import lid
from leakfix.langs import (
    PROFILES, char_is_native, char_script, foreign_class, get_profile, han_ok, is_japanese_han, script_class, token_class,
)


@pytest.mark.parametrize("ch, script", [
    ("a", "Latin"), ("é", "Latin"), ("Ａ", "Latin"), ("Ж", "Cyrillic"), ("ї", "Cyrillic"), ("東", "Han"), ("々", "Han"),
    ("𠀋", "Han"), ("の", "Hiragana"), ("カ", "Katakana"), ("ｶ", "Katakana"), ("ー", "Katakana"), ("한", "Hangul"),
    ("α", "Greek"), ("ب", "Arabic"), ("ก", "Thai"), ("क", "Devanagari"), ("ि", "Devanagari"), ("א", "Hebrew"),
    ("1", "Common"), ("١", "Common"), ("、", "Common"), ("・", "Common"), (" ", "Common"), ("\ufffd", "Common"),
    ("µ", "Common"), ("°", "Common"), ("😀", "Common"), ("\u0301", "Common"),
])
def test_char_script(ch, script):
    assert char_script(ch) == script


def test_script_classes_agree_with_char_script():
    han, latin = re.compile(f"[{script_class('Han')}]"), re.compile(f"[{script_class('Latin')}]")
    for ch in "東々𠀋aÉ、1ーﾟ":
        assert bool(han.match(ch)) == (char_script(ch) == "Han"), ch
        assert bool(latin.match(ch)) == (char_script(ch) == "Latin"), ch
    ja_foreign = re.compile(f"[{foreign_class('ja')}]")
    assert ja_foreign.match("a") and ja_foreign.match("한") and not ja_foreign.match("東") and not ja_foreign.match("の")


def test_han_forms():
    assert is_japanese_han("経") and is_japanese_han("終") and is_japanese_han("東") and is_japanese_han("没")
    assert not is_japanese_han("经") and not is_japanese_han("终") and not is_japanese_han("们") and not is_japanese_han("說")
    assert han_ok("们", "hans") and not han_ok("們", "hans") and not han_ok("這", "hans")
    assert han_ok("們", "hant") and not han_ok("们", "hant") and not han_ok("国", "hant")
    assert han_ok("的", "hans") and han_ok("的", "hant") and han_ok("们", None)


def test_sibling_letters():
    uk, ru = get_profile("uk"), get_profile("ru")
    assert char_is_native("ї", uk) and not char_is_native("ы", uk)
    assert char_is_native("ы", ru) and not char_is_native("ї", ru)


@pytest.mark.parametrize("text, lang, cls", [
    ("結", "ja", "native"), ("しかし", "ja", "native"), ("ー", "ja", "native"), (" ultimately", "ja", "foreign"),
    ("最终", "ja", "foreign"), ("们", "ja", "foreign"), ("但是", "ja", "foreign"), ("但", "ja", "native"),
    ("한", "ja", "foreign"), ("、", "ja", "neutral"), ("\ufffd", "ja", "neutral"), (" 12", "ja", "neutral"), ("", "ja", "neutral"),
    ("하지만", "ko", "native"), (" however", "ko", "foreign"), ("東京", "ko", "foreign"),
    (" однако", "ru", "native"), (" also", "ru", "foreign"), (" ми", "uk", "native"), (" мы", "uk", "foreign"),
    ("們", "zh-Hans", "foreign"), ("们", "zh-Hant", "foreign"), ("们", "zh", "native"), (" the", "en", "native"), ("的", "en", "foreign"),
])
def test_token_class(text, lang, cls):
    assert token_class(text, lang) == cls


def test_profiles_cover_the_languages():
    for code in ["ja", "ko", "zh", "zh-Hans", "zh-Hant", "ru", "uk", "en", "fr", "de", "es", "hi", "ar", "th", "he", "el", "it", "pt", "vi"]:
        p = get_profile(code)
        assert p.scripts and p.fasttext and p.code == code
    assert all(p.fasttext for p in PROFILES.values())
    with pytest.raises(ValueError, match="unknown language 'klingon'"):
        get_profile("klingon")


def test_fasttext_runs_for_real():
    assert lid.model_path().name == "lid.176.ftz" and lid.model_path().exists()
    assert lid.predict("これは日本語の文章です。")[0][0] == "ja"
    assert lid.predict("Это русский текст.")[0][0] == "ru"
    assert lid.predict("한국어 문장입니다.")[0][0] == "ko"
    label, score = lid.predict("ultimately")[0]
    assert label == "en" and 0 < score <= 1.0
    assert len(lid.predict("first line\nsecond line", k=3)) == 3  # newlines do not break the engine
    assert lid.predict("  \n ") == [] and lid.top("") == (None, 0.0)


def test_japanese_is_segmented_for_fasttext():
    # Unsegmented, the quantised model calls this Polish; split at script boundaries it is Japanese.
    text = "秀吉との間で勢力争いを繰り広げ"
    assert lid.prepare(text).split()[:3] == ["秀吉", "との", "間"]
    assert lid.top(text)[0] == "ja"
