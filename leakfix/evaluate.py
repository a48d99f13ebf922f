"""Stage `evaluate`: regenerate held-out prompts with the base and the tuned model, measure leaks.

Both models answer the same held-out prompts (never mined, never trained on) with the same
per-prompt seeds and sampling parameters; `detect` runs on both, and each metric gets a 95 %
cluster-bootstrap CI over prompts plus McNemar's paired test (tuned vs base, same prompt/sample).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field

from leakfix import detect
from leakfix.artifacts import Counts, Rejects, StageResult, run_stage, write_table
from leakfix.backends import EngineConfig, SamplingConfig, load_backend
from leakfix.config import StageConfig
from leakfix.detect import DetectConfig
from leakfix.generate import generate_rows, prepare_parts_dir, select_prompts
from leakfix.prompts import load_prompts
from leakfix.schemas import DETECTIONS, GENERATIONS, METRICS
from leakfix.stats import mcnemar_exact, ratio_ci

log = logging.getLogger(__name__)

ROLES = ("base", "tuned")


class EvaluateConfig(StageConfig):
    split: str = Field("heldout", description="prompts to evaluate on (heldout: never mined)")
    heldout_fraction: float = Field(0.3, ge=0.0, lt=1.0, description="must match generate's")
    engine: EngineConfig = Field(default_factory=EngineConfig)
    sampling: SamplingConfig = Field(default_factory=lambda: SamplingConfig(n=4, temperature=0.8))
    temperatures: list[float] = Field(default_factory=lambda: [0.8], min_length=1, description="one evaluation per temperature (overrides sampling.temperature)")
    system_prompt: str | None = Field(None, description="as in generate")
    max_prompts: int | None = Field(None, ge=1, description="cap on held-out prompts, for quick runs")
    chunk_size: int = Field(1024, ge=1, description="prompts per checkpointed part")
    detect: DetectConfig = Field(default_factory=DetectConfig, description="detector settings (the pipeline copies detect's)")
    n_boot: int = Field(1000, ge=100, description="bootstrap resamples for the CIs")


def response_metrics(det: pl.DataFrame, n_boot: int) -> list[dict]:
    """Per-language and overall leak metrics of one model at one temperature."""
    per_prompt = det.group_by("prompt_id", "lang").agg(
        responses=pl.len(),
        leaked=(pl.col("verdict") != "clean").sum(),
        leaks=pl.col("n_leaks").sum(),
        leak_tokens=pl.col("n_leak_tokens").sum(),
        tokens=pl.col("n_tokens").sum(),
    )
    rows = []
    langs = sorted(per_prompt["lang"].unique().to_list())
    for lang in langs + ["all"]:
        g = per_prompt if lang == "all" else per_prompt.filter(pl.col("lang") == lang)
        for metric, num, den, scale in (
            ("response_leak_rate", "leaked", "responses", 1.0),
            ("token_leak_rate", "leak_tokens", "tokens", 1.0),
            ("leaks_per_1k_tokens", "leaks", "tokens", 1000.0),
        ):
            v, lo, hi = ratio_ci(g[num].to_numpy(), g[den].to_numpy(), n_boot=n_boot)
            rows.append({"metric": metric, "lang": lang, "value": v * scale, "ci_low": lo * scale, "ci_high": hi * scale, "n": int(g[den].sum())})
    return rows


def paired_p_values(base: pl.DataFrame, tuned: pl.DataFrame) -> dict[str, float]:
    """McNemar p-value per language (and 'all') on leaked/clean of the same prompt and sample."""
    j = base.select("prompt_id", "sample", "lang", b=pl.col("verdict") != "clean").join(
        tuned.select("prompt_id", "sample", t=pl.col("verdict") != "clean"), on=["prompt_id", "sample"]
    )
    out = {}
    for lang in sorted(j["lang"].unique().to_list()) + ["all"]:
        g = j if lang == "all" else j.filter(pl.col("lang") == lang)
        out[lang] = mcnemar_exact(int((g["b"] & ~g["t"]).sum()), int((~g["b"] & g["t"]).sum()))
    return out


def run(config: EvaluateConfig, prompts: Path, base_model: str, tuned_model: str | Path, out_dir: Path, force: bool = False) -> StageResult:
    from transformers import AutoTokenizer

    inputs = {"prompts": prompts, "base_model": base_model, "tuned_model": str(tuned_model)}

    def body(out: Path) -> Counts:
        rejects = Rejects("evaluate")
        chosen = select_prompts(load_prompts(prompts, config.heldout_fraction), config.split, config.max_prompts)
        row_of = {p.id: i for i, p in enumerate(chosen)}
        if not chosen:
            raise ValueError(f"{prompts}: no prompts in split {config.split!r} (heldout_fraction {config.heldout_fraction})")
        tok = AutoTokenizer.from_pretrained(base_model, trust_remote_code=config.engine.trust_remote_code)
        parts, metrics = [], []
        for T in config.temperatures:
            # Greedy decoding gives one answer per prompt, however many samples were asked for.
            sampling = config.sampling.model_copy(update={"temperature": T, "n": 1 if T == 0 else config.sampling.n})
            dets = {}
            for role, model in zip(ROLES, (base_model, str(tuned_model))):
                name = f"{role}-t{T:g}"
                pdir = out / "parts" / name
                prepare_parts_dir(pdir, {"config": config.model_dump(mode="json"), "model": model, "role": role, "T": T})
                gen_path = out / "parts" / f"{name}.parquet"
                generate_rows(
                    lambda m=model: load_backend(m, config.engine), tok, chosen, sampling,
                    model_id=model, model_revision=config.engine.revision, role=role,
                    max_model_len=config.engine.max_model_len, system_prompt=config.system_prompt,
                    parts_dir=pdir, out_path=gen_path, chunk_size=config.chunk_size,
                    rejects=rejects, source=prompts, row_of=row_of,
                )
                parts.append(gen_path)
                res = detect.run(config.detect, gen_path, out / "detect" / name, force=force)
                dets[role] = pl.read_parquet(res.out_dir / "detections.parquet")
                for r in response_metrics(dets[role], config.n_boot):
                    metrics.append({**r, "model": role, "temperature": T, "p_value": None})
            pvals = paired_p_values(dets["base"], dets["tuned"])
            for m in metrics:
                if m["model"] == "tuned" and m["temperature"] == T and m["metric"] == "response_leak_rate":
                    m["p_value"] = pvals.get(m["lang"])
        n_gen = write_table(pa.concat_tables([pq.read_table(p, schema=GENERATIONS) for p in parts]), GENERATIONS, out / "eval_generations.parquet")
        write_table(metrics, METRICS, out / "metrics.parquet")
        rejects.write(out)
        # A prompt too long for the model is rejected once per (model, temperature): count it once.
        n_rej = len({r["row"] for r in rejects.rows})
        return Counts(
            rows_in=len(chosen), rows_out=len(metrics), rows_rejected=n_rej, rows_accounted=len(chosen) - n_rej,
            extra={"eval_generations": n_gen, "prompts": len(chosen)},
        )

    return run_stage("evaluate", config, inputs, out_dir, body, force=force)
