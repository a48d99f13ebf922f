"""Generation backends behind one small interface, so stages never branch on which one runs.

A backend takes chat-formatted prompt token ids and returns, per prompt, `n` completions with
their token ids, text, finish reason and the top-k (id, logprob) at every generated position.
Logprobs are of the raw model distribution (before temperature / top-p), so they are comparable
across sampling settings and across backends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from pydantic import Field, model_validator

from leakfix.config import StageConfig


class SamplingConfig(StageConfig):
    n: int = Field(1, ge=1, description="samples per prompt")
    temperature: float = Field(0.7, ge=0.0, description="0 = greedy")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="nucleus sampling mass")
    top_k: int = Field(0, ge=0, description="0 = no top-k truncation")
    max_tokens: int = Field(256, ge=1, description="max generated tokens per response")
    seed: int = Field(0, description="base seed; each prompt gets a stable seed derived from it and its id")
    logprobs: int = Field(5, ge=0, le=20, description="top-k (id, logprob) captured per generated position")

    @model_validator(mode="after")
    def _check(self) -> "SamplingConfig":
        if self.temperature == 0.0 and self.n > 1:
            raise ValueError("temperature 0 is greedy: every sample would be identical, set n: 1")
        return self


class EngineConfig(StageConfig):
    backend: Literal["vllm", "hf"] = Field("vllm", description="vllm (default) or transformers generate")
    dtype: str = Field("auto", description="auto | float32 | bfloat16 | float16")
    max_model_len: int = Field(1024, ge=16, description="prompt + response tokens")
    trust_remote_code: bool = Field(False, description="run model code from the hub (off: secure by default)")
    revision: str | None = Field(None, description="model revision (branch, tag or commit) for hub ids")
    tensor_parallel_size: int = Field(1, ge=1, description="vLLM: GPUs per model replica")
    data_parallel_size: int = Field(1, ge=1, description="vLLM: model replicas")
    gpu_memory_utilization: float = Field(0.85, gt=0.0, le=1.0, description="vLLM on GPU")
    enforce_eager: bool = Field(False, description="vLLM: skip graph capture / compilation")
    hf_batch_size: int = Field(16, ge=1, description="transformers backend: prompts per generate call")

    @model_validator(mode="after")
    def _check(self) -> "EngineConfig":
        if self.backend == "hf" and (self.tensor_parallel_size > 1 or self.data_parallel_size > 1):
            raise ValueError("tensor/data parallelism needs backend: vllm")
        return self


@dataclass
class Completion:
    token_ids: list[int]
    text: str
    finish_reason: str
    token_logprobs: list[float] = field(default_factory=list)
    topk_ids: list[list[int]] = field(default_factory=list)
    topk_logprobs: list[list[float]] = field(default_factory=list)


@dataclass
class Request:
    prompt_token_ids: list[int]
    seed: int


class Backend(Protocol):
    name: str

    def generate(self, requests: list[Request], sampling: SamplingConfig) -> list[list[Completion]]:
        """One list of `sampling.n` completions per request, in request order."""
        ...

    def close(self) -> None: ...


def eos_token_ids(model: str, revision: str | None = None, trust_remote_code: bool = False) -> set[int]:
    """Ids that end a response: generation_config's eos list, else the tokenizer's eos."""
    from transformers import AutoTokenizer, GenerationConfig

    try:
        eos = GenerationConfig.from_pretrained(model, revision=revision).eos_token_id
    except OSError:
        eos = None
    if eos is None:
        eos = AutoTokenizer.from_pretrained(model, revision=revision, trust_remote_code=trust_remote_code).eos_token_id
    return set([eos] if isinstance(eos, int) else eos)


def load_backend(model: str, engine: EngineConfig) -> Backend:
    if engine.backend == "vllm":
        from leakfix.backends.vllm_backend import VLLMBackend

        return VLLMBackend(model, engine)
    from leakfix.backends.hf_backend import HFBackend

    return HFBackend(model, engine)
