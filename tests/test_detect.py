import json

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from leakfix import detect
from leakfix.artifacts import write_table
from leakfix.detect import DetectConfig, detect_text, detect_text_file
from leakfix.schemas import DETECTIONS, GENERATIONS, LEAKS, REJECTS


@pytest.mark.parametrize("text, lang, leaked, rule", [
    ("秀吉との間で勢力争いを繰り広げ、 ultimately 秀吉に敗北。", "ja", ["ultimately"], "foreign_script"),
    ("京都は有名です。但是、京都は静かです。", "ja", ["但是"], "foreign_word"),  # only Japanese-valid characters
    ("東京は大きいです。最终的に人が多い。", "ja", ["最终"], "foreign_word"),  # the word, not just 终
    ("彼らは经常ここに来ます。", "ja", ["经常"], "foreign_word"),
    ("彼们は来ます。東京は垅です。", "ja", ["们", "垅"], "han_form"),  # Simplified-only forms
    ("東京は대한민국より大きいです。", "ja", ["대한민국"], "foreign_script"),
    ("김치는 인기가 많습니다. however 김치를 좋아합니다.", "ko", ["however"], "foreign_script"),
    ("이것은 重要한 문제입니다.", "ko", ["重要"], "foreign_script"),
    ("Многие, for example, выбирают Москву.", "ru", ["for example"], "foreign_script"),
    ("Це мы знаємо.", "uk", ["мы"], "foreign_letter"),  # a Russian word in Ukrainian
    ("这是我们的國家。", "zh-Hans", ["國"], "han_form"),
])
def test_leaks_are_found(text, lang, leaked, rule):
    d = detect_text(text, lang)
    assert d.verdict == "leaked"
    assert [s.text for s in d.spans] == leaked and {s.rule for s in d.spans} == {rule}
    for s in d.spans:
        assert text[s.char_start : s.char_end] == s.text and s.lid_label and 0 < s.lid_score <= 1


def test_runs_join_across_spaces_but_not_punctuation():
    d = detect_text("彼は main street を歩き、 ultimately, however 帰った。", "ja")
    assert [s.text for s in d.spans] == ["main street", "ultimately", "however"]
    d = detect_text("彼は Main Street を歩いた。", "ja", config=DetectConfig(allow_proper_nouns=False))
    assert [s.text for s in d.spans] == ["Main Street"]


@pytest.mark.parametrize("text, lang, prompt, rule", [
    ("詳細は https://example.com/docs を見てください。", "ja", None, "url"),
    ("連絡は info@example.com までお願いします。", "ja", None, "url"),
    ("関数 `print_report` を呼びます。", "ja", None, "code"),
    ("例：\n```python\nprint('hello world')\n```\n以上です。", "ja", None, "code"),
    ("式 $E = mc^2$ は有名です。", "ja", None, "math"),
    ("APIとGPUsを使います。", "ja", None, "acronym"),
    ("GPT-4は大きなモデルです。", "ja", None, "acronym"),
    ("iPhoneは人気です。", "ja", None, "identifier"),
    ("Qwen2.5とnumpy.arrayを使う。", "ja", None, "identifier"),
    ("毎日5 kmを走ります。", "ja", None, "unit"),
    ("Pythonはとても便利です。", "ja", "Pythonについて教えて", "prompt_term"),
    ("東京（Tokyo）は首都です。", "ja", None, "gloss"),
    ("Москва (Moscow) — столица.", "ru", None, "gloss"),
    ("「Hello」は挨拶です。", "ja", None, "quote"),
    ("Googleは有名な会社です。", "ja", None, "proper_noun"),
    ("彼は Main Street を歩いた。", "ja", None, "proper_noun"),
    ("변수 x를 사용합니다.", "ko", None, "too_short"),
])
def test_what_is_not_a_leak_says_why(text, lang, prompt, rule):
    d = detect_text(text, lang, prompt)
    assert d.verdict == "clean", [(s.text, s.rule) for s in d.spans]
    assert rule in {s.rule for s in d.dropped}


def test_rules_can_be_switched_off():
    cfg = DetectConfig(allow_acronyms=False, allow_urls=False)
    d = detect_text("APIの詳細は https://example.com にあります。", "ja", config=cfg)
    assert "API" in [s.text for s in d.spans] and d.verdict == "leaked"


def test_capitalised_connective_is_still_a_leak():
    d = detect_text("Это важно. However, это не так.", "ru")
    assert [s.text for s in d.spans] == ["However"]


def test_whole_response_in_wrong_language():
    d = detect_text("The capital of Japan is Tokyo, a very large city.", "ja")
    assert d.verdict == "wrong_language" and d.n_lines == 1 and d.n_lines_wrong == 1 and d.lid_label == "en"
    assert d.n_words_wrong == d.n_words == 10


def test_english_heavy_sentence_that_is_still_japanese_is_only_leaked():
    # Latin letters outnumber the Japanese ones, but fastText still reads the line as Japanese.
    d = detect_text("秀吉は ultimately, however 敗北した。", "ja")
    assert d.foreign_share > 0.5 and d.verdict == "leaked"


def test_chinese_sentence_in_japanese_answer_is_a_line_leak():
    text = "京都は日本の古都です。\n京都有很多寺庙和神社，每年吸引大量游客。\n京都には多くの寺院があります。"
    d = detect_text(text, "ja")
    assert [s.rule for s in d.spans] == ["lid_line"] and d.spans[0].lid_label == "zh"
    assert d.spans[0].text == "京都有很多寺庙和神社，每年吸引大量游客"
    assert (d.n_lines, d.n_lines_wrong) == (3, 1)


def test_without_lid():
    d = detect_text("秀吉は ultimately 敗北した。", "ja", config=DetectConfig(use_lid=False))
    assert [s.text for s in d.spans] == ["ultimately"] and d.spans[0].lid_label is None
    assert d.n_lines == 1 and d.n_lines_wrong is None


def test_unknown_language_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown language 'xx'"):
        detect_text("hello", "xx")


def _gen(tok, pid, lang, text, sample=0, ids_text=None):
    ids = tok(ids_text if ids_text is not None else text, add_special_tokens=False)["input_ids"]
    return {"prompt_id": pid, "sample": sample, "lang": lang, "prompt": "質問", "prompt_token_ids": [1], "token_ids": ids,
            "text": text, "finish_reason": "stop", "token_logprobs": [], "topk_ids": [], "topk_logprobs": [],
            "model": "unused", "model_revision": None, "role": "mine", "temperature": 0.8, "seed": 0}


def test_stage_writes_contracts_token_spans_and_rejects(tmp_path, qwen_tokenizer, tokenizer_dir):
    tok = qwen_tokenizer
    rows = [
        _gen(tok, "a", "ja", "秀吉との間で勢力争いを繰り広げ、 ultimately 秀吉に敗北。"),
        _gen(tok, "b", "ko", "깨끗한 문장입니다."),
        _gen(tok, "c", "xx", "hello"),
        _gen(tok, "d", "ja", "東京は垅です。"),  # 垅 is split over two byte-level tokens
        # The backend's text lost a prefix the token ids still hold: offsets go through an alignment.
        _gen(tok, "e", "ja", "秀吉は ultimately 敗北した。", ids_text="前置き。秀吉は ultimately 敗北した。"),
    ]
    write_table(rows, GENERATIONS, tmp_path / "g.parquet")
    cfg = DetectConfig(tokenizer=str(tokenizer_dir), batch_size=2)
    res = detect.run(cfg, tmp_path / "g.parquet", tmp_path / "d")
    assert (res.rows_in, res.rows_out, res.rows_rejected) == (5, 4, 1)
    assert res.extra["leaks"] == 3 and res.extra["text_mismatch"] == 1
    for name, schema in (("leaks", LEAKS), ("detections", DETECTIONS), ("rejects", REJECTS)):
        assert pq.read_schema(tmp_path / "d" / f"{name}.parquet").equals(schema, check_metadata=False)
    leaks = {r["prompt_id"]: r for r in pl.read_parquet(tmp_path / "d" / "leaks.parquet").iter_rows(named=True)}
    for pid, want_tokens, want_text in (("a", " ultimately", "ultimately"), ("d", "垅", "垅"), ("e", " ultimately", "ultimately")):
        leak = leaks[pid]
        ids = next(r["token_ids"] for r in rows if r["prompt_id"] == pid)
        assert tok.decode(ids[leak["token_start"] : leak["token_end"]]) == want_tokens
        assert leak["text"] == want_text and leak["leak_idx"] == 0
    assert leaks["d"]["token_end"] - leaks["d"]["token_start"] == 2 and leaks["d"]["rule"] == "han_form"
    dets = pl.read_parquet(tmp_path / "d" / "detections.parquet")
    verdict = dict(zip(dets["prompt_id"], dets["verdict"]))
    assert verdict == {"a": "leaked", "b": "clean", "d": "leaked", "e": "leaked"}
    a = dets.filter(pl.col("prompt_id") == "a").row(0, named=True)
    assert a["role"] == "mine" and a["n_leaks"] == 1 and a["n_leak_tokens"] == 1 and a["n_tokens"] == len(rows[0]["token_ids"])
    rej = pl.read_parquet(tmp_path / "d" / "rejects.parquet")
    assert rej["row"].to_list() == [2] and rej["field"].to_list() == ["lang"] and "unknown language" in rej["reason"][0]
    again = detect.run(cfg, tmp_path / "g.parquet", tmp_path / "d")
    assert again.skipped and (again.rows_in, again.rows_out, again.rows_rejected) == (5, 4, 1)


def test_stage_rejects_null_text_and_needs_no_tokenizer_when_clean(tmp_path, qwen_tokenizer):
    rows = [_gen(qwen_tokenizer, "a", "ja", "きれいな文です。"), _gen(qwen_tokenizer, "b", "ja", "x")]
    rows[1]["text"] = None
    schema = pa.schema([f.with_nullable(True) for f in GENERATIONS])  # a producer that broke the contract
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp_path / "g.parquet")
    res = detect.run(DetectConfig(tokenizer="/nonexistent"), tmp_path / "g.parquet", tmp_path / "d")
    assert (res.rows_in, res.rows_out, res.rows_rejected) == (2, 1, 1) and res.extra["leaks"] == 0
    rej = pl.read_parquet(tmp_path / "d" / "rejects.parquet").row(0, named=True)
    assert (rej["row"], rej["field"], rej["reason"]) == (1, "text", "text is null")


def test_detect_text_file(tmp_path):
    inp = tmp_path / "in.jsonl"
    inp.write_text(
        json.dumps({"id": 1, "lang": "ja", "text": "繰り広げ、 ultimately 敗北。"}, ensure_ascii=False) + "\n"
        + json.dumps({"id": "x", "lang": "ja", "text": "きれいな文です。"}, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    assert detect_text_file(inp, tmp_path / "out.jsonl") == 2
    out = [json.loads(l) for l in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert out == [{"id": 1, "spans": [[6, 16]], "verdict": "leaked"}, {"id": "x", "spans": [], "verdict": "clean"}]
    for bad, field in (('{"id": 1, "lang": "ja"}', "text"), ('{"id": 1, "lang": "xx", "text": "a"}', "lang"), ('{"lang": "ja", "text": "a"}', "id")):
        inp.write_text('{"id": 0, "lang": "ja", "text": "ok"}\n' + bad + "\n")
        with pytest.raises(ValueError, match=rf"in.jsonl: line 2, field '{field}'"):
            detect_text_file(inp, tmp_path / "out.jsonl")
