import json

import polars as pl
import pytest

from leakfix import correct
from leakfix.artifacts import read_table, write_table
from leakfix.schemas import GENERATIONS, LEAKS, RECORDS

PROMPT = "秀吉について教えてください。"
TEXT = "秀吉との間で勢力争いを繰り広げ、 ultimately 秀吉に敗北。"


def _gen_row(tok, text, topk_at, sample=0, prompt_id="ja-1"):
    ids = tok(text, add_special_tokens=False)["input_ids"]
    topk_ids = [[i] for i in ids]
    topk_lps = [[-0.1] for _ in ids]
    lps = [-0.1] * len(ids)
    for pos, cands in topk_at.items():
        topk_ids[pos] = [tok.convert_tokens_to_ids(tok.tokenize(c))[0] for c, _ in cands]
        topk_lps[pos] = [lp for _, lp in cands]
        lps[pos] = cands[0][1]
    return {
        "prompt_id": prompt_id, "sample": sample, "lang": "ja", "prompt": PROMPT,
        "prompt_token_ids": tok(PROMPT, add_special_tokens=False)["input_ids"], "token_ids": ids, "text": text,
        "finish_reason": "stop", "token_logprobs": lps, "topk_ids": topk_ids, "topk_logprobs": topk_lps,
        "model": "m", "model_revision": None, "role": "mine", "temperature": 0.8, "seed": 1,
    }


def _pos_of(tok, text, piece):
    ids = tok(text, add_special_tokens=False)["input_ids"]
    target = tok(piece, add_special_tokens=False)["input_ids"][0]
    return ids.index(target)


def _leak(text, word, pos, n_tokens=1, idx=0, prompt_id="ja-1", sample=0):
    s = text.index(word)
    return {"prompt_id": prompt_id, "sample": sample, "lang": "ja", "leak_idx": idx, "char_start": s, "char_end": s + len(word),
            "token_start": pos, "token_end": pos + n_tokens, "text": word, "script": "Latin", "lid_label": "en",
            "lid_score": 0.9, "rule": "script"}


def test_correction_takes_the_in_language_topk_candidate(tmp_path, qwen_tokenizer, tokenizer_dir):
    tok = qwen_tokenizer
    p = _pos_of(tok, TEXT, " ultimately")
    cands = [(" ultimately", -0.5), ("最後", -1.2), (" eventually", -2.0), ("最终", -2.5), ("、", -3.0)]
    gens = [_gen_row(tok, TEXT, {p: cands})]
    write_table(gens, GENERATIONS, tmp_path / "g.parquet")
    write_table([_leak(TEXT, "ultimately", p)], LEAKS, tmp_path / "l.parquet")
    res = correct.run(correct.CorrectConfig(), tmp_path / "g.parquet", tmp_path / "l.parquet", str(tokenizer_dir), tmp_path / "out")
    assert (res.rows_in, res.rows_out, res.rows_rejected) == (1, 1, 0)
    rec = read_table(tmp_path / "out" / "records.parquet", RECORDS).to_pylist()[0]
    good = tok.decode(rec["good_token_ids"][0][:1])
    bad = [tok.decode([t]) for t in rec["bad_token_ids"][0]]
    assert good == "最後"
    assert bad[0] == " ultimately" and " eventually" in bad and "最终" in bad and "、" not in bad
    assert rec["positions"] == [p] and rec["response_token_ids"][p] == rec["good_token_ids"][0][0]
    assert rec["prompt_token_ids"] == gens[0]["prompt_token_ids"]
    assert rec["chosen"] == "秀吉との間で勢力争いを繰り広げ、最後 秀吉に敗北。" and rec["rejected"] == TEXT
    assert abs(rec["p_good"][0] - (2.718281828 ** -1.2)) < 1e-3
    line = json.loads((tmp_path / "out" / "records.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert set(line) == {"chosen", "rejected", "leak_tokens", "corrected_token"}
    assert line["corrected_token"] == ["最後"] and line["leak_tokens"][0] == " ultimately"


def test_leak_without_in_language_candidate_is_rejected_with_reason(tmp_path, qwen_tokenizer, tokenizer_dir):
    tok = qwen_tokenizer
    p = _pos_of(tok, TEXT, " ultimately")
    gens = [_gen_row(tok, TEXT, {p: [(" ultimately", -0.1), (" eventually", -2.0)]})]
    write_table(gens, GENERATIONS, tmp_path / "g.parquet")
    write_table([_leak(TEXT, "ultimately", p), {**_leak(TEXT, "ultimately", 999, idx=1), "sample": 5}], LEAKS, tmp_path / "l.parquet")
    res = correct.run(correct.CorrectConfig(), tmp_path / "g.parquet", tmp_path / "l.parquet", str(tokenizer_dir), tmp_path / "out")
    assert (res.rows_in, res.rows_out, res.rows_rejected) == (2, 0, 2)
    rej = pl.read_parquet(tmp_path / "out" / "rejects.parquet").sort("row")
    assert "no in-language candidate" in rej["reason"][0] and rej["row"].to_list() == [0, 1]
    assert "no response" in rej["reason"][1] and rej["field"][1] == "prompt_id"


def test_two_leaks_are_packed_into_one_row(tmp_path, qwen_tokenizer, tokenizer_dir):
    tok = qwen_tokenizer
    text = "彼は、 however 東京に行き、 ultimately 大阪に住んだ。"
    p1, p2 = _pos_of(tok, text, " however"), _pos_of(tok, text, " ultimately")
    gens = [_gen_row(tok, text, {p1: [(" however", -0.7), ("しかし", -0.9)], p2: [(" ultimately", -0.5), ("最後", -1.0)]})]
    write_table(gens, GENERATIONS, tmp_path / "g.parquet")
    write_table([_leak(text, "however", p1), _leak(text, "ultimately", p2, idx=1)], LEAKS, tmp_path / "l.parquet")
    res = correct.run(correct.CorrectConfig(), tmp_path / "g.parquet", tmp_path / "l.parquet", str(tokenizer_dir), tmp_path / "out")
    assert (res.rows_in, res.rows_out, res.rows_rejected) == (2, 1, 0)
    rec = read_table(tmp_path / "out" / "records.parquet", RECORDS).to_pylist()[0]
    ids = rec["response_token_ids"]
    assert [tok.decode([ids[q]]) for q in rec["positions"]] == ["しかし", "最後"]
    assert rec["chosen"] == "彼は、しかし 東京に行き、最後 大阪に住んだ。"
    assert len(ids) == rec["positions"][-1] + 1  # nothing after the last fix is trained
    assert len((tmp_path / "out" / "records.jsonl").read_text(encoding="utf-8").splitlines()) == 2
