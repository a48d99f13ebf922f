"""Stage `report`: the before/after table (markdown, and a rich table for the terminal)."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
from pydantic import Field

from leakfix import STAGES
from leakfix.artifacts import Counts, StageResult, load_manifest, read_table, run_stage
from leakfix.config import StageConfig
from leakfix.schemas import METRICS


class ReportConfig(StageConfig):
    title: str = Field("leakfix report", description="report heading")
    metrics: list[str] = Field(
        default_factory=lambda: ["response_leak_rate", "token_leak_rate", "leaks_per_1k_tokens"],
        description="metrics shown in the before/after table",
    )


def _fmt(v: float | None, metric: str) -> str:
    if v is None or v != v:
        return "–"
    return f"{v:.2f}" if metric == "leaks_per_1k_tokens" else f"{100 * v:.1f}%"


def before_after(metrics: pl.DataFrame, metric: str) -> list[dict]:
    """Rows of (temperature, lang, base, tuned, change, p) for one metric."""
    m = metrics.filter(pl.col("metric") == metric)
    base = m.filter(pl.col("model") == "base").drop("model", "p_value")
    tuned = m.filter(pl.col("model") == "tuned").drop("model")
    j = base.join(tuned, on=["metric", "lang", "temperature"], suffix="_tuned").sort("temperature", pl.col("lang") == "all", "lang")
    rows = []
    for r in j.iter_rows(named=True):
        change = (r["value_tuned"] - r["value"]) / r["value"] if r["value"] else None
        rows.append(
            {
                "T": f"{r['temperature']:g}",
                "lang": r["lang"],
                "base": f"{_fmt(r['value'], metric)} [{_fmt(r['ci_low'], metric)}, {_fmt(r['ci_high'], metric)}]",
                "tuned": f"{_fmt(r['value_tuned'], metric)} [{_fmt(r['ci_low_tuned'], metric)}, {_fmt(r['ci_high_tuned'], metric)}]",
                "change": "–" if change is None else f"{100 * change:+.0f}%",
                "p": "–" if r["p_value"] is None else f"{r['p_value']:.3g}",
                "n": str(r["n"]),
            }
        )
    return rows


def markdown_table(rows: list[dict]) -> str:
    if not rows:
        return "_no rows_\n"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(r[c] for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def stage_times(run_dir: Path) -> list[dict]:
    out = []
    for s in STAGES:
        m = load_manifest(run_dir / s)
        if m:
            c = m["counts"]
            out.append({"stage": s, "wall_s": f"{m['wall_s']:.1f}", "rows_in": str(c["rows_in"]), "rows_out": str(c["rows_out"]), "rejected": str(c["rows_rejected"])})
    return out


def render(config: ReportConfig, metrics_path: Path, run_dir: Path | None) -> str:
    metrics = pl.from_arrow(read_table(metrics_path, METRICS))
    parts = [f"# {config.title}\n"]
    if run_dir is not None:
        train = load_manifest(run_dir / "train")
        if train:
            ex = train["counts"].get("extra", {})
            if "p_bad_pre" in ex:
                parts.append(
                    "Training positions: p(bad) {:.2%} → {:.2%}, p(good) {:.2%} → {:.2%}.\n".format(
                        ex["p_bad_pre"], ex["p_bad_post"], ex["p_good_pre"], ex["p_good_post"]
                    )
                )
    for metric in config.metrics:
        parts.append(f"## {metric} (held-out prompts, base → tuned, 95% CI)\n")
        parts.append(markdown_table(before_after(metrics, metric)))
    if run_dir is not None and (times := stage_times(run_dir)):
        parts.append("## Stages\n")
        parts.append(markdown_table(times))
    return "\n".join(parts)


def run(config: ReportConfig, metrics: Path, out_dir: Path, run_dir: Path | None = None, force: bool = False) -> StageResult:
    inputs = {"metrics": metrics}

    def body(out: Path) -> Counts:
        text = render(config, metrics, run_dir)
        tmp = out / ".report.md.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, out / "report.md")
        return Counts(rows_in=1, rows_out=1, extra={"report": str(out / "report.md")})

    # The stage table in the report reads the other manifests: always re-render.
    return run_stage("report", config, inputs, out_dir, body, force=True)


def print_summary(metrics_path: Path, metric: str = "response_leak_rate") -> None:
    from rich.console import Console
    from rich.table import Table

    rows = before_after(pl.from_arrow(read_table(metrics_path, METRICS)), metric)
    table = Table(title=f"{metric}: base → tuned (held-out prompts, 95% CI)")
    for c in (rows[0] if rows else {"lang": ""}):
        table.add_column(c)
    for r in rows:
        table.add_row(*r.values())
    import sys

    Console(width=None if sys.stdout.isatty() else 120).print(table)
