from pathlib import Path

import pytest

from leakfix.pipeline import PipelineConfig, load_config
from leakfix.runtime import ROOT


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "configs").glob("*.yaml")))
def test_shipped_configs_validate(name):
    cfg = load_config(ROOT / "configs" / name)
    assert cfg.evaluate.heldout_fraction == cfg.generate.heldout_fraction == cfg.heldout_fraction
    assert cfg.evaluate.detect == cfg.detect


def test_gpu_example_is_a_multi_gpu_setup():
    cfg = load_config(ROOT / "configs" / "qwen3-8b-8gpu.yaml")
    e = cfg.generate.engine
    assert e.backend == "vllm" and e.tensor_parallel_size * e.data_parallel_size == 8 and e.dtype == "bfloat16"
    assert cfg.evaluate.engine == e  # evaluate loads models like generate unless told otherwise
    assert cfg.train.lr == 5e-6 and not e.trust_remote_code
    for f in ("ddp-8gpu.yaml", "fsdp-8gpu.yaml"):
        import yaml

        acc = yaml.safe_load((ROOT / "configs/accelerate" / f).read_text())
        assert acc["num_processes"] == 8


def test_overrides_and_errors_name_the_field(tmp_path):
    cfg = load_config(ROOT / "configs/demo.yaml", ["generate.sampling.n=2", "evaluate.temperatures=[0, 0.7]"])
    assert cfg.generate.sampling.n == 2 and cfg.evaluate.temperatures == [0.0, 0.7]
    bad = tmp_path / "bad.yaml"
    bad.write_text("generate:\n  sampling:\n    temprature: 0.5\n")
    with pytest.raises(ValueError, match=r"(?s)bad.yaml.*temprature"):
        load_config(bad)
    with pytest.raises(ValueError, match="n: 1"):
        load_config(None, ["generate.sampling.temperature=0", "generate.sampling.n=4"])
    with pytest.raises(ValueError, match="not of the form"):
        load_config(None, ["generate.sampling.n"])


def test_defaults_are_secure():
    cfg = PipelineConfig()
    assert not cfg.generate.engine.trust_remote_code and not cfg.train.trust_remote_code
