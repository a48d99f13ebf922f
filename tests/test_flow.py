"""The Prefect flow end to end on the testbed: real vLLM, fastText, accelerate, Prefect."""

import asyncio

import polars as pl
import pytest

from leakfix.artifacts import load_manifest, read_table
from leakfix.runtime import ROOT
from leakfix.schemas import METRICS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="module")
def demo_run(harness, testbed_model, tmp_path_factory):
    from flows.pipeline import leakfix_pipeline

    run_dir = tmp_path_factory.mktemp("demo")
    report = leakfix_pipeline(config=str(ROOT / "configs/demo.yaml"), run_dir=str(run_dir))
    return run_dir, report


def test_flow_runs_every_stage_and_writes_the_contracts(demo_run):
    run_dir, report = demo_run
    for stage in ("generate", "detect", "correct", "train", "evaluate", "report"):
        m = load_manifest(run_dir / stage)
        assert m is not None, f"{stage} wrote no manifest"
        c = m["counts"]
        accounted = c["rows_out"] if c["rows_accounted"] is None else c["rows_accounted"]
        assert c["rows_in"] == accounted + c["rows_rejected"], stage
    assert (run_dir / "train" / "checkpoint" / "model.safetensors").exists()
    assert not list((run_dir / "train" / "checkpoint").glob("*.bin"))
    assert "response_leak_rate" in open(report, encoding="utf-8").read()


def test_base_leaks_and_tuned_leaks_less_on_heldout_prompts(demo_run):
    run_dir, _ = demo_run
    m = pl.from_arrow(read_table(run_dir / "evaluate" / "metrics.parquet", METRICS))
    rate = m.filter((pl.col("metric") == "response_leak_rate") & (pl.col("lang") == "all"))
    base = rate.filter(pl.col("model") == "base")["value"][0]
    tuned = rate.filter(pl.col("model") == "tuned")["value"][0]
    assert base > 0, "the testbed should leak"
    assert tuned < base, f"tuned {tuned:.3f} should leak less than base {base:.3f}"
    langs = set(m["lang"].unique().to_list())
    assert {"all", "ja", "ko"} <= langs
    for metric in ("response_leak_rate", "token_leak_rate"):
        for model in ("base", "tuned"):
            rows = m.filter((pl.col("metric") == metric) & (pl.col("model") == model))
            assert set(rows["lang"].to_list()) == langs
            assert (rows["ci_low"] <= rows["value"]).all() and (rows["value"] <= rows["ci_high"]).all()


def test_rerun_skips_every_stage(demo_run):
    from flows.pipeline import leakfix_pipeline

    run_dir, _ = demo_run
    before = {s: load_manifest(run_dir / s)["finished_at"] for s in ("generate", "detect", "correct", "train", "evaluate")}
    leakfix_pipeline(config=str(ROOT / "configs/demo.yaml"), run_dir=str(run_dir))
    after = {s: load_manifest(run_dir / s)["finished_at"] for s in before}
    assert before == after


def test_flow_published_artifacts(demo_run):
    from prefect.client.orchestration import get_client

    async def keys():
        async with get_client() as client:
            arts = await client.read_artifacts()
            return {a.key for a in arts}

    got = asyncio.run(keys())
    assert {"generate", "detect", "correct", "train", "evaluate", "report"} <= got
