"""Shared fixtures: the real Qwen tokenizer and the testbed model (built once, cached on disk)."""

from __future__ import annotations

import pytest

from leakfix.runtime import configure_env

configure_env()


@pytest.fixture(scope="session")
def qwen_tokenizer():
    from leakfix.testbed.tokenizer import build_qwen_tokenizer

    return build_qwen_tokenizer()


@pytest.fixture(scope="session")
def tokenizer_dir(qwen_tokenizer, tmp_path_factory):
    d = tmp_path_factory.mktemp("tok")
    qwen_tokenizer.save_pretrained(d)
    return d


@pytest.fixture(scope="session")
def testbed_model() -> str:
    """The embedded testbed (data/models/testbed), built on first use like `make testbed`."""
    from leakfix.pipeline import PipelineConfig, model_path

    return model_path(PipelineConfig())
