import json

import pyarrow.parquet as pq
import pytest

from leakfix.artifacts import Counts, Rejects, StageError, fingerprint, read_table, run_stage, write_table
from leakfix.config import StageConfig
from leakfix.schemas import METRICS, REJECTS


class Cfg(StageConfig):
    x: int = 1


def _metric_rows(n):
    return [{"metric": "m", "model": "base", "lang": "ja", "value": float(i), "ci_low": None, "ci_high": None, "n": 1,
             "temperature": 0.7, "p_value": None} for i in range(n)]


def test_write_table_is_atomic_and_typed(tmp_path):
    p = tmp_path / "m.parquet"
    assert write_table(_metric_rows(3), METRICS, p) == 3
    t = pq.read_table(p)
    assert t.schema.equals(METRICS, check_metadata=False)
    assert not list(tmp_path.glob(".*tmp"))
    with pytest.raises(Exception):
        write_table([{"metric": "m"}], METRICS, tmp_path / "bad.parquet")  # required fields missing


def test_run_stage_skips_when_up_to_date_and_reruns_on_change(tmp_path):
    inp = tmp_path / "in.txt"
    inp.write_text("a")
    calls = []

    def body(out):
        calls.append(1)
        write_table(_metric_rows(2), METRICS, out / "m.parquet")
        return Counts(rows_in=3, rows_out=2, rows_rejected=1)

    r1 = run_stage("s", Cfg(), {"in": inp}, tmp_path / "s", body)
    r2 = run_stage("s", Cfg(), {"in": inp}, tmp_path / "s", body)
    assert (r1.skipped, r2.skipped, len(calls)) == (False, True, 1)
    assert (r2.rows_in, r2.rows_out, r2.rows_rejected) == (3, 2, 1)
    run_stage("s", Cfg(x=2), {"in": inp}, tmp_path / "s", body)  # config changed
    inp.write_text("b")
    run_stage("s", Cfg(x=2), {"in": inp}, tmp_path / "s", body)  # input content changed
    assert len(calls) == 3
    m = json.loads((tmp_path / "s" / "_manifest.json").read_text())
    assert m["outputs"] == ["m.parquet"] and m["counts"]["rows_in"] == 3


def test_killed_stage_leaves_no_manifest_and_is_redone(tmp_path):
    def boom(out):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_stage("s", Cfg(), {}, tmp_path / "s", boom)
    assert not (tmp_path / "s" / "_manifest.json").exists()


def test_row_accounting_is_enforced(tmp_path):
    with pytest.raises(StageError, match=r"rows in \(5\) != rows out \(3\) \+ rejected \(1\)"):
        run_stage("s", Cfg(), {}, tmp_path / "s", lambda out: Counts(rows_in=5, rows_out=3, rows_rejected=1))


def test_rejects_name_file_row_and_field(tmp_path):
    r = Rejects("detect")
    r.add(tmp_path / "g.parquet", 7, "unknown language 'xx'", "lang", payload={"lang": "xx"})
    r.write(tmp_path)
    row = read_table(tmp_path / "rejects.parquet", REJECTS).to_pylist()[0]
    assert row["row"] == 7 and row["field"] == "lang" and row["source"].endswith("g.parquet")
    assert json.loads(row["payload"]) == {"lang": "xx"}


def test_read_table_names_missing_columns(tmp_path):
    write_table(_metric_rows(1), METRICS, tmp_path / "m.parquet")
    with pytest.raises(StageError, match="m.parquet: missing column"):
        read_table(tmp_path / "m.parquet", REJECTS)
    with pytest.raises(StageError, match="does not exist"):
        read_table(tmp_path / "nope.parquet", METRICS)


def test_fingerprint_hashes_folders_and_keeps_hub_ids(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "w.safetensors").write_bytes(b"1")
    a = fingerprint(Cfg(), {"model": tmp_path / "d", "hub": "Qwen/Qwen3-8B"})
    (tmp_path / "d" / "w.safetensors").write_bytes(b"2")
    b = fingerprint(Cfg(), {"model": tmp_path / "d", "hub": "Qwen/Qwen3-8B"})
    assert a["inputs"]["model"] != b["inputs"]["model"] and a["inputs"]["hub"] == "Qwen/Qwen3-8B"
