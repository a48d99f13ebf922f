"""bench-generate: leakfix `generate` (vLLM, top-k capture, Parquet parts) vs a bare vLLM loop vs HF.

Same prompts, same sampling, one process, measured side by side; engine start is timed apart
from generation so the ratio is about the work per token. Run: `make bench-generate`
(or `python -m tests.bench.bench_generate --model PATH --prompts FILE`).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from leakfix.runtime import ROOT, configure_env, has_cuda_gpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default=None, help="model folder (default: the testbed, built if missing)")
    ap.add_argument("--prompts", type=Path, default=ROOT / "data/prompts/testbed.jsonl")
    ap.add_argument("--n-prompts", type=int, default=96)
    ap.add_argument("--n", type=int, default=4, help="samples per prompt")
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--hf-prompts", type=int, default=24, help="HF generate is slow: fewer prompts")
    a = ap.parse_args()
    configure_env()

    import polars as pl
    from rich.console import Console
    from rich.table import Table
    from transformers import AutoTokenizer
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    from leakfix import generate
    from leakfix.backends import EngineConfig, SamplingConfig
    from leakfix.generate import chat_token_ids, request_seed
    from leakfix.pipeline import PipelineConfig, model_path
    from leakfix.prompts import load_prompts

    model = a.model or model_path(PipelineConfig())
    prompts = load_prompts(a.prompts, 0.0)[: a.n_prompts]
    sub = tempfile.mkdtemp(prefix="bench-gen-")
    pfile = Path(sub) / "prompts.jsonl"
    pfile.write_text("".join(f'{{"id": "{p.id}", "lang": "{p.lang}", "prompt": {__import__("json").dumps(p.prompt, ensure_ascii=False)}}}\n' for p in prompts), encoding="utf-8")
    sampling = SamplingConfig(n=a.n, temperature=0.8, top_k=50, max_tokens=a.max_tokens, seed=0, logprobs=5)
    engine = EngineConfig(backend="vllm", dtype="float32", max_model_len=512, enforce_eager=True)
    results = []

    # 1. bare vLLM: the same token prompts and sampling, outputs dropped (with and without logprobs).
    tok = AutoTokenizer.from_pretrained(model)
    reqs = [TokensPrompt(prompt_token_ids=chat_token_ids(tok, p.prompt)) for p in prompts]
    t0 = time.perf_counter()
    llm = LLM(model=model, dtype="float32", max_model_len=512, enforce_eager=True, seed=0, distributed_executor_backend="uni")
    start_s = time.perf_counter() - t0
    llm.generate(reqs[:8], SamplingParams(max_tokens=8), use_tqdm=False)  # warm-up, like the engine's own
    for lp in (None, 5):
        # Per-request seeds exactly where the leakfix backend uses them (GPU; see vllm_backend.py).
        params = [SamplingParams(n=a.n, temperature=0.8, top_k=50, max_tokens=a.max_tokens, logprobs=lp,
                                 seed=request_seed(0, p.id) if has_cuda_gpu() else None) for p in prompts]
        t0 = time.perf_counter()
        outs = llm.generate(reqs, params, use_tqdm=False)
        dt = time.perf_counter() - t0
        toks = sum(len(c.token_ids) for o in outs for c in o.outputs)
        results.append(("bare vLLM" + (" + logprobs=5" if lp else ""), len(prompts) * a.n, toks, start_s, dt))
    del llm, outs
    import gc

    gc.collect()

    # 2. leakfix generate: vLLM backend, top-k extraction, Parquet parts + final file, manifest.
    out = Path(sub) / "leakfix"
    cfg = generate.GenerateConfig(split="all", heldout_fraction=0.0, engine=engine, sampling=sampling, chunk_size=10**6)
    res = generate.run(cfg, pfile, model, out, force=True)
    rows = pl.read_parquet(out / "generations.parquet")
    results.append(("leakfix generate (vLLM)", rows.height, res.extra["new_tokens"], res.extra["engine_s"], res.extra["gen_s"]))

    # 3. HF generate through the same stage (fewer prompts: it is the slow reference).
    hf_pfile = Path(sub) / "hf.jsonl"
    hf_pfile.write_text("".join(pfile.read_text(encoding="utf-8").splitlines(keepends=True)[: a.hf_prompts]), encoding="utf-8")
    cfg_hf = cfg.model_copy(update={"engine": engine.model_copy(update={"backend": "hf", "hf_batch_size": 32})})
    res = generate.run(cfg_hf, hf_pfile, model, Path(sub) / "hf", force=True)
    results.append(("leakfix generate (HF)", res.rows_out, res.extra["new_tokens"], res.extra["engine_s"], res.extra["gen_s"]))

    bare = results[0][2] / results[0][4]
    table = Table(title=f"bench-generate: {Path(model).name}, {len(prompts)} prompts × {a.n}, max_tokens {a.max_tokens}")
    for c in ("path", "responses", "output tokens", "engine start s", "generate s", "tokens/s", "× bare vLLM"):
        table.add_column(c, justify="right" if c != "path" else "left")
    for name, n, toks, st, dt in results:
        table.add_row(name, str(n), str(toks), f"{st:.1f}", f"{dt:.1f}", f"{toks / dt:.0f}", f"{toks / dt / bare:.2f}")
    Console(width=160).print(table)
    lf = results[2][2] / results[2][4]
    print(f"ratio leakfix/bare vLLM: {lf / bare:.2f} (same work incl. logprobs: {lf / (results[1][2] / results[1][4]):.2f}); "
          f"bare vLLM/HF: {bare / (results[3][2] / results[3][4]):.1f}")


if __name__ == "__main__":
    main()
