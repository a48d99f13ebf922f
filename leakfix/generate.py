"""Stage `generate`: sample responses to the chat-formatted prompts, keeping top-k logprobs per token.

Work is cut into chunks of prompts; each chunk is written as its own Parquet part and a rerun of
a killed stage skips the parts already on disk (datatrove-style checkpointing), then the parts
are concatenated into `generations.parquet`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field

from leakfix.artifacts import Counts, Rejects, StageResult, fingerprint, run_stage, write_table
from leakfix.backends import Backend, EngineConfig, Request, SamplingConfig, load_backend
from leakfix.config import StageConfig
from leakfix.prompts import Prompt, load_prompts
from leakfix.schemas import GENERATIONS

log = logging.getLogger(__name__)


class GenerateConfig(StageConfig):
    split: Literal["mine", "heldout", "all"] = Field("mine", description="which prompts to answer")
    heldout_fraction: float = Field(0.3, ge=0.0, lt=1.0, description="share of prompt ids held out for evaluate")
    engine: EngineConfig = Field(default_factory=EngineConfig, description="backend and model loading")
    sampling: SamplingConfig = Field(default_factory=lambda: SamplingConfig(n=4, temperature=0.8))
    system_prompt: str | None = Field(None, description="system message prepended to every prompt")
    chunk_size: int = Field(1024, ge=1, description="prompts per checkpointed part")
    max_prompts: int | None = Field(None, ge=1, description="cap on prompts (after the split), for quick runs")


def request_seed(base_seed: int, prompt_id: str) -> int:
    """Stable per-prompt seed, so base and tuned models are sampled with identical randomness."""
    return int.from_bytes(hashlib.sha256(f"{base_seed}:{prompt_id}".encode()).digest()[:4], "big") & 0x7FFFFFFF


def chat_token_ids(tokenizer, prompt: str, system_prompt: str | None = None) -> list[int]:
    messages = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [
        {"role": "user", "content": prompt}
    ]
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def select_prompts(prompts: list[Prompt], split: str, max_prompts: int | None) -> list[Prompt]:
    chosen = [p for p in prompts if split == "all" or p.split == split]
    return chosen[:max_prompts] if max_prompts else chosen


@dataclass
class GenStats:
    prompts: int = 0  # prompts answered (not rejected)
    rows: int = 0  # responses in the output file
    new_tokens: int = 0  # tokens generated in this call (resumed parts excluded)
    engine_s: float = 0.0  # loading the model / starting the engine
    gen_s: float = 0.0  # generating + writing parts


def generate_rows(
    make_backend: Callable[[], Backend],
    tokenizer,
    prompts: list[Prompt],
    sampling: SamplingConfig,
    *,
    model_id: str,
    model_revision: str | None,
    role: str,
    max_model_len: int,
    system_prompt: str | None,
    parts_dir: Path,
    out_path: Path,
    chunk_size: int,
    rejects: Rejects,
    source: Path,
    row_of: dict[str, int],
) -> GenStats:
    """Generate for `prompts` into `out_path`, resuming from finished parts."""
    stats = GenStats()
    backend: Backend | None = None
    requests: list[tuple[Prompt, list[int]]] = []
    for p in prompts:
        ids = chat_token_ids(tokenizer, p.prompt, system_prompt)
        if len(ids) + sampling.max_tokens > max_model_len:
            rejects.add(source, row_of[p.id], f"prompt is {len(ids)} tokens; with max_tokens {sampling.max_tokens} it exceeds max_model_len {max_model_len}", "prompt")
            continue
        requests.append((p, ids))
    parts_dir.mkdir(parents=True, exist_ok=True)
    n_parts = (len(requests) + chunk_size - 1) // chunk_size
    try:
        for part in range(n_parts):
            path = parts_dir / f"part-{part:05d}.parquet"
            if path.exists():
                log.info("generate: %s already done, skipped", path.name)
                continue
            chunk = requests[part * chunk_size : (part + 1) * chunk_size]
            if backend is None:
                t0 = time.perf_counter()
                backend = make_backend()
                stats.engine_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            log.info("generate: part %d/%d, %d prompts × %d samples (%s)", part + 1, n_parts, len(chunk), sampling.n, role)
            outs = backend.generate([Request(ids, request_seed(sampling.seed, p.id)) for p, ids in chunk], sampling)
            rows = []
            for (p, ids), comps in zip(chunk, outs):
                for s, c in enumerate(comps):
                    rows.append(
                        {
                            "prompt_id": p.id, "sample": s, "lang": p.lang, "prompt": p.prompt,
                            "prompt_token_ids": ids, "token_ids": c.token_ids, "text": c.text,
                            "finish_reason": c.finish_reason, "token_logprobs": c.token_logprobs,
                            "topk_ids": c.topk_ids, "topk_logprobs": c.topk_logprobs,
                            "model": model_id, "model_revision": model_revision, "role": role,
                            "temperature": sampling.temperature, "seed": request_seed(sampling.seed, p.id),
                        }
                    )
            write_table(rows, GENERATIONS, path)
            stats.new_tokens += sum(len(r["token_ids"]) for r in rows)
            stats.gen_s += time.perf_counter() - t0
    finally:
        if backend is not None:
            backend.close()
    parts = sorted(parts_dir.glob("part-*.parquet"))
    table = pa.concat_tables([pq.read_table(p, schema=GENERATIONS) for p in parts]) if parts else GENERATIONS.empty_table()
    stats.rows = write_table(table, GENERATIONS, out_path)
    stats.prompts = len(requests)
    if stats.gen_s:
        log.info("generate: %d new tokens in %.1fs (%.0f tokens/s), engine start %.1fs", stats.new_tokens, stats.gen_s, stats.new_tokens / stats.gen_s, stats.engine_s)
    return stats


def prepare_parts_dir(parts_dir: Path, fp: dict) -> None:
    """Keep finished parts only if they were made with the same config and inputs."""
    marker = parts_dir / "_fingerprint.json"
    text = json.dumps(fp, sort_keys=True, default=str)
    if parts_dir.exists() and (not marker.exists() or marker.read_text() != text):
        shutil.rmtree(parts_dir)
    parts_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(text)


def run(config: GenerateConfig, prompts: Path, model: str, out_dir: Path, force: bool = False) -> StageResult:
    from transformers import AutoTokenizer

    inputs = {"prompts": prompts, "model": model}

    def body(out: Path) -> Counts:
        rejects = Rejects("generate")
        all_prompts = load_prompts(prompts, config.heldout_fraction, rejects)
        malformed = len(rejects)  # lines that are no prompt at all: in, but in no split
        row_of = {p.id: i for i, p in enumerate(all_prompts)}
        chosen = select_prompts(all_prompts, config.split, config.max_prompts)
        tok = AutoTokenizer.from_pretrained(model, revision=config.engine.revision, trust_remote_code=config.engine.trust_remote_code)
        parts = out / "parts"
        if force and parts.exists():
            shutil.rmtree(parts)
        prepare_parts_dir(parts, fingerprint(config, inputs))
        st = generate_rows(
            lambda: load_backend(model, config.engine), tok, chosen, config.sampling,
            model_id=str(model), model_revision=config.engine.revision, role="mine",
            max_model_len=config.engine.max_model_len, system_prompt=config.system_prompt,
            parts_dir=parts, out_path=out / "generations.parquet", chunk_size=config.chunk_size,
            rejects=rejects, source=prompts, row_of=row_of,
        )
        rejects.write(out)
        return Counts(
            rows_in=len(chosen) + malformed, rows_out=st.rows, rows_rejected=len(rejects), rows_accounted=st.prompts,
            extra={"prompts": len(chosen), "samples_per_prompt": config.sampling.n, "new_tokens": st.new_tokens,
                   "engine_s": round(st.engine_s, 2), "gen_s": round(st.gen_s, 2)},
        )

    return run_stage("generate", config, inputs, out_dir, body, force=force)
