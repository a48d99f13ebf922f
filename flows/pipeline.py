"""Prefect flow `leakfix-pipeline`: the stages as tasks, chained by the paths they write.

Thin by design: every task calls the stage function the CLI calls, passes paths (never data),
and publishes a Prefect artifact (a counts table per stage, the report as markdown). Reruns
skip finished stages through the stages' own manifests, not through Prefect's cache.

    python -m flows.pipeline --config configs/demo.yaml --run-dir data/runs/demo
"""

from __future__ import annotations

import argparse
from pathlib import Path

from leakfix.runtime import configure_env

configure_env()  # PREFECT_HOME inside the repo, before prefect is imported

from prefect import flow, get_run_logger, task  # noqa: E402
from prefect.artifacts import create_markdown_artifact, create_table_artifact  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402

from leakfix import correct, detect, evaluate, generate, report, train  # noqa: E402
from leakfix.artifacts import StageResult  # noqa: E402
from leakfix.pipeline import PipelineConfig, _prompts, load_config, model_path  # noqa: E402


def _publish(res: StageResult) -> None:
    logger = get_run_logger()
    logger.info(
        "%s: %d in, %d out, %d rejected, %.1fs%s",
        res.stage, res.rows_in, res.rows_out, res.rows_rejected, res.wall_s, " (up to date, skipped)" if res.skipped else "",
    )
    create_table_artifact(
        key=res.stage,
        table=[{"rows_in": res.rows_in, "rows_out": res.rows_out, "rows_rejected": res.rows_rejected,
                "wall_s": round(res.wall_s, 2), "skipped": res.skipped, "out_dir": str(res.out_dir)}],
        description=f"leakfix `{res.stage}` counts",
    )


@task(name="testbed", cache_policy=NO_CACHE)
def model_task(cfg: PipelineConfig) -> str:
    return model_path(cfg)


@task(name="generate", cache_policy=NO_CACHE)
def generate_task(cfg: PipelineConfig, model: str, run_dir: Path, force: bool) -> Path:
    res = generate.run(cfg.generate, _prompts(cfg), model, run_dir / "generate", force)
    _publish(res)
    return res.out_dir / "generations.parquet"


@task(name="detect", cache_policy=NO_CACHE)
def detect_task(cfg: PipelineConfig, generations: Path, run_dir: Path, force: bool) -> Path:
    res = detect.run(cfg.detect, generations, run_dir / "detect", force)
    _publish(res)
    return res.out_dir / "leaks.parquet"


@task(name="correct", cache_policy=NO_CACHE)
def correct_task(cfg: PipelineConfig, generations: Path, leaks: Path, model: str, run_dir: Path, force: bool) -> Path:
    res = correct.run(cfg.correct, generations, leaks, model, run_dir / "correct", force)
    _publish(res)
    return res.out_dir / "records.parquet"


@task(name="train", cache_policy=NO_CACHE)
def train_task(cfg: PipelineConfig, records: Path, model: str, run_dir: Path, force: bool) -> Path:
    res = train.run(cfg.train, records, model, run_dir / "train", force)
    _publish(res)
    return res.out_dir / "checkpoint"


@task(name="evaluate", cache_policy=NO_CACHE)
def evaluate_task(cfg: PipelineConfig, model: str, checkpoint: Path, run_dir: Path, force: bool) -> Path:
    res = evaluate.run(cfg.evaluate, _prompts(cfg), model, checkpoint, run_dir / "evaluate", force)
    _publish(res)
    return res.out_dir / "metrics.parquet"


@task(name="report", cache_policy=NO_CACHE)
def report_task(cfg: PipelineConfig, metrics: Path, run_dir: Path) -> Path:
    res = report.run(cfg.report, metrics, run_dir / "report", run_dir)
    _publish(res)
    md = (res.out_dir / "report.md").read_text(encoding="utf-8")
    create_markdown_artifact(key="report", markdown=md, description="leakfix before/after report")
    return res.out_dir / "report.md"


@flow(name="leakfix-pipeline", log_prints=True)
def leakfix_pipeline(
    config: str | None = "configs/demo.yaml",
    run_dir: str = "data/runs/demo",
    overrides: list[str] | None = None,
    force: bool = False,
) -> str:
    cfg = load_config(Path(config) if config else None, overrides)
    rd = Path(run_dir)
    model = model_task(cfg)
    generations = generate_task(cfg, model, rd, force)
    leaks = detect_task(cfg, generations, rd, force)
    records = correct_task(cfg, generations, leaks, model, rd, force)
    checkpoint = train_task(cfg, records, model, rd, force)
    metrics = evaluate_task(cfg, model, checkpoint, rd, force)
    return str(report_task(cfg, metrics, rd))


def main() -> None:
    ap = argparse.ArgumentParser(description="Run the leakfix pipeline as a Prefect flow.")
    ap.add_argument("--config", default="configs/demo.yaml")
    ap.add_argument("--run-dir", default="data/runs/demo")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="field.path=value")
    ap.add_argument("--force", action="store_true")
    a = ap.parse_args()
    out = leakfix_pipeline(a.config, a.run_dir, a.overrides, a.force)
    from leakfix.report import print_summary

    print(Path(out).read_text(encoding="utf-8"))
    print_summary(Path(a.run_dir) / "evaluate" / "metrics.parquet")


if __name__ == "__main__":
    main()
