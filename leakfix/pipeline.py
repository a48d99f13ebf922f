"""The whole pipeline as plain functions: one per stage, each knowing where its inputs and outputs
live inside a run directory. The CLI and the Prefect flow both call these, so neither computes
anything the other cannot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, model_validator

from leakfix import correct, detect, evaluate, generate, report, train
from leakfix.artifacts import StageResult
from leakfix.correct import CorrectConfig
from leakfix.detect import DetectConfig
from leakfix.evaluate import EvaluateConfig
from leakfix.generate import GenerateConfig
from leakfix.report import ReportConfig
from leakfix.train import TrainConfig
from leakfix.config import StageConfig
from leakfix.runtime import ROOT

TESTBED = "testbed"


class PipelineConfig(StageConfig):
    model: str = Field(TESTBED, description="hub id or local folder of the model to fix; 'testbed' builds the embedded one")
    prompts: Path = Field(Path("data/prompts/testbed.jsonl"), description="JSONL of {id, lang, prompt}")
    heldout_fraction: float = Field(0.3, ge=0.0, lt=1.0, description="share of prompt ids kept for evaluation only")
    testbed: dict[str, Any] = Field(default_factory=dict, description="TestbedConfig fields, used when model is 'testbed'")
    generate: GenerateConfig = Field(default_factory=GenerateConfig, description="stage generate")
    detect: DetectConfig = Field(default_factory=DetectConfig, description="stage detect")
    correct: CorrectConfig = Field(default_factory=CorrectConfig, description="stage correct")
    train: TrainConfig = Field(default_factory=TrainConfig, description="stage train")
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig, description="stage evaluate")
    report: ReportConfig = Field(default_factory=ReportConfig, description="stage report")

    @model_validator(mode="after")
    def _share(self) -> "PipelineConfig":
        # One value, set once: the split and the detector must be the same wherever they are used.
        object.__setattr__(self.generate, "heldout_fraction", self.heldout_fraction)
        object.__setattr__(self.evaluate, "heldout_fraction", self.heldout_fraction)
        object.__setattr__(self.evaluate, "detect", self.detect)
        # Evaluate loads models and formats prompts like generate unless told otherwise.
        for f in ("engine", "system_prompt"):
            if f not in self.evaluate.model_fields_set:
                object.__setattr__(self.evaluate, f, getattr(self.generate, f))
        return self


def _set(d: dict, dotted: str, value: Any) -> None:
    *path, last = dotted.split(".")
    for k in path:
        d = d.setdefault(k, {})
    d[last] = value


def load_config(path: Path | None, overrides: list[str] | None = None) -> PipelineConfig:
    """YAML file, then `a.b.c=value` overrides (values parsed as YAML: 3, 0.5, true, [0, 0.7])."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ValueError(f"{path}: not valid YAML: {e}") from e
    for o in overrides or []:
        if "=" not in o:
            raise ValueError(f"override {o!r} is not of the form field.path=value")
        k, v = o.split("=", 1)
        _set(data, k.strip(), yaml.safe_load(v))
    try:
        return PipelineConfig.model_validate(data)
    except Exception as e:
        raise ValueError(f"{path or 'config'}: {e}") from e


def model_path(cfg: PipelineConfig) -> str:
    """The model to fix; builds the testbed on first use (cached under data/models/testbed)."""
    if cfg.model != TESTBED:
        return cfg.model
    from leakfix.testbed.build import TestbedConfig, build_testbed

    return str(build_testbed(TestbedConfig(**cfg.testbed), ROOT / "data" / "models" / "testbed"))


def _prompts(cfg: PipelineConfig) -> Path:
    p = cfg.prompts
    return p if p.is_absolute() or p.exists() else ROOT / p


def stage_dir(run_dir: Path, stage: str) -> Path:
    return Path(run_dir) / stage


def run_generate(cfg: PipelineConfig, run_dir: Path, force: bool = False) -> StageResult:
    return generate.run(cfg.generate, _prompts(cfg), model_path(cfg), stage_dir(run_dir, "generate"), force)


def run_detect(cfg: PipelineConfig, run_dir: Path, force: bool = False) -> StageResult:
    return detect.run(cfg.detect, stage_dir(run_dir, "generate") / "generations.parquet", stage_dir(run_dir, "detect"), force)


def run_correct(cfg: PipelineConfig, run_dir: Path, force: bool = False) -> StageResult:
    return correct.run(
        cfg.correct,
        stage_dir(run_dir, "generate") / "generations.parquet",
        stage_dir(run_dir, "detect") / "leaks.parquet",
        model_path(cfg),
        stage_dir(run_dir, "correct"),
        force,
    )


def run_train(cfg: PipelineConfig, run_dir: Path, force: bool = False) -> StageResult:
    return train.run(cfg.train, stage_dir(run_dir, "correct") / "records.parquet", model_path(cfg), stage_dir(run_dir, "train"), force)


def run_evaluate(cfg: PipelineConfig, run_dir: Path, force: bool = False) -> StageResult:
    return evaluate.run(
        cfg.evaluate, _prompts(cfg), model_path(cfg), stage_dir(run_dir, "train") / "checkpoint", stage_dir(run_dir, "evaluate"), force
    )


def run_report(cfg: PipelineConfig, run_dir: Path, force: bool = False) -> StageResult:
    return report.run(cfg.report, stage_dir(run_dir, "evaluate") / "metrics.parquet", stage_dir(run_dir, "report"), Path(run_dir), force)


RUNNERS = {
    "generate": run_generate,
    "detect": run_detect,
    "correct": run_correct,
    "train": run_train,
    "evaluate": run_evaluate,
    "report": run_report,
}
