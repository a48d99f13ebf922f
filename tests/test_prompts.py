import json

import pytest

from leakfix.artifacts import Rejects
from leakfix.prompts import load_prompts, split_of
from leakfix.runtime import ROOT


def test_split_is_stable_and_near_the_fraction():
    ids = [f"p{i}" for i in range(4000)]
    a = [split_of(i, 0.3) for i in ids]
    assert a == [split_of(i, 0.3) for i in ids]
    share = a.count("heldout") / len(a)
    assert 0.27 < share < 0.33
    assert all(split_of(i, 0.0) == "mine" for i in ids[:100])


def _write(tmp_path, lines):
    p = tmp_path / "p.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def test_bad_lines_name_file_line_and_field(tmp_path):
    p = _write(tmp_path, [json.dumps({"id": "a", "lang": "ja", "prompt": "こんにちは"}), json.dumps({"id": "b", "lang": "ja"})])
    with pytest.raises(ValueError, match=r"p.jsonl: line 2, field 'prompt'"):
        load_prompts(p, 0.3)
    p = _write(tmp_path, ["{not json"])
    with pytest.raises(ValueError, match=r"line 1: invalid JSON"):
        load_prompts(p, 0.3)


def test_bad_lines_go_to_rejects_and_nothing_is_lost(tmp_path):
    lines = [
        json.dumps({"id": "a", "lang": "ja", "prompt": "x"}),
        json.dumps({"id": "a", "lang": "ja", "prompt": "dup"}),
        json.dumps({"id": "c", "lang": "", "prompt": "x"}),
        json.dumps({"id": "d", "lang": "ko", "prompt": "y"}),
    ]
    r = Rejects("generate")
    got = load_prompts(_write(tmp_path, lines), 0.5, r)
    assert [p.id for p in got] == ["a", "d"]
    assert [(x["row"], x["field"]) for x in r.rows] == [(1, "id"), (2, "lang")]
    assert len(got) + len(r) == len(lines)


def test_shipped_prompt_set_is_valid():
    prompts = load_prompts(ROOT / "data" / "prompts" / "testbed.jsonl", 0.3)
    langs = {p.lang for p in prompts}
    assert {"ja", "ko"} <= langs and len(langs) >= 3
    for lang in langs:
        held = [p for p in prompts if p.lang == lang and p.split == "heldout"]
        assert len(held) >= 10, lang
