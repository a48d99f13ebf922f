"""transformers `generate` backend: slower than vLLM, but needs nothing beyond torch.

Used where vLLM is not installed, and as the reference the vLLM path is checked against.
"""

from __future__ import annotations

import torch
from tqdm import tqdm

from leakfix.backends import Completion, EngineConfig, Request, SamplingConfig, eos_token_ids


class HFBackend:
    name = "hf"

    def __init__(self, model: str, engine: EngineConfig) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        dtype = {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[engine.dtype]
        self.tokenizer = AutoTokenizer.from_pretrained(model, revision=engine.revision, trust_remote_code=engine.trust_remote_code)
        self.model = AutoModelForCausalLM.from_pretrained(
            model, revision=engine.revision, dtype=dtype, trust_remote_code=engine.trust_remote_code, use_safetensors=True
        ).eval()
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model.to(self.device)
        self.eos_ids = eos_token_ids(model, engine.revision, engine.trust_remote_code)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else next(iter(self.eos_ids))
        self.batch_size = engine.hf_batch_size

    @torch.inference_mode()
    def generate(self, requests: list[Request], sampling: SamplingConfig) -> list[list[Completion]]:
        out: list[list[Completion]] = []
        for i in tqdm(range(0, len(requests), self.batch_size), desc="hf generate", unit="batch"):
            out.extend(self._batch(requests[i : i + self.batch_size], sampling))
        return out

    def _batch(self, reqs: list[Request], s: SamplingConfig) -> list[list[Completion]]:
        # Left padding so every prompt ends at the same column and generation starts together.
        width = max(len(r.prompt_token_ids) for r in reqs)
        ids = torch.full((len(reqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for j, r in enumerate(reqs):
            ids[j, width - len(r.prompt_token_ids) :] = torch.tensor(r.prompt_token_ids)
            mask[j, width - len(r.prompt_token_ids) :] = 1
        # One seed per batch: HF has no per-request generator, so samples differ from vLLM's anyway.
        torch.manual_seed(reqs[0].seed)
        greedy = s.temperature == 0.0
        res = self.model.generate(
            input_ids=ids.to(self.device),
            attention_mask=mask.to(self.device),
            do_sample=not greedy,
            temperature=None if greedy else s.temperature,
            top_p=None if greedy else s.top_p,
            top_k=None if greedy or s.top_k == 0 else s.top_k,
            max_new_tokens=s.max_tokens,
            num_return_sequences=s.n,
            eos_token_id=sorted(self.eos_ids),
            pad_token_id=self.pad_id,
            output_logits=s.logprobs > 0,
            return_dict_in_generate=True,
        )
        gen = res.sequences[:, width:].cpu()
        logprobs = torch.stack(res.logits, dim=1).float().log_softmax(-1).cpu() if s.logprobs > 0 else None
        comps: list[list[Completion]] = [[] for _ in reqs]
        for row in range(gen.shape[0]):
            toks = gen[row].tolist()
            finish = "length"
            for t, tok in enumerate(toks):
                if tok in self.eos_ids:
                    toks, finish = toks[:t], "stop"
                    break
            c = Completion(toks, self.tokenizer.decode(toks, skip_special_tokens=True), finish)
            if logprobs is not None and toks:
                lp = logprobs[row, : len(toks)]
                top = lp.topk(s.logprobs, dim=-1)
                c.token_logprobs = lp.gather(-1, torch.tensor(toks)[:, None]).squeeze(-1).tolist()
                c.topk_ids = top.indices.tolist()
                c.topk_logprobs = top.values.tolist()
            comps[row // s.n].append(c)
        return comps

    def close(self) -> None:
        del self.model
