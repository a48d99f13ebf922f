"""Sample the testbed with vLLM and report how often it leaks (a sanity check, not a stage).

    python -m leakfix.testbed.check [--n 4] [--temperature 0.8]
"""

from __future__ import annotations

import argparse
import re

from leakfix.runtime import ROOT, configure_env

# Deliberately cruder than leakfix.detect: an independent look at the same phenomenon.
FOREIGN = {
    "ja": re.compile(r"[A-Za-z]|[\uac00-\ud7af]|但是|最终|特别|而且|例如|经常"),
    "ko": re.compile(r"[A-Za-z]"),
    "ru": re.compile(r"[A-Za-z]"),
}


def check_testbed(path: str, n: int = 4, temperature: float = 0.8, max_tokens: int = 96) -> dict:
    configure_env()
    from vllm import LLM, SamplingParams

    from leakfix.testbed.corpus import prompt_list

    prompts = prompt_list()
    llm = LLM(model=path, dtype="float32", max_model_len=512, enforce_eager=True, seed=0, distributed_executor_backend="uni")
    tok = llm.get_tokenizer()
    texts = [tok.apply_chat_template([{"role": "user", "content": p["prompt"]}], add_generation_prompt=True, tokenize=False) for p in prompts]
    outs = llm.generate(texts, SamplingParams(n=n, temperature=temperature, top_k=50, max_tokens=max_tokens))
    stats: dict[str, dict[str, float]] = {}
    for p, o in zip(prompts, outs):
        s = stats.setdefault(p["lang"], {"responses": 0, "leaked": 0, "finished": 0, "topk_native": 0, "leak_positions": 0})
        for c in o.outputs:
            s["responses"] += 1
            s["finished"] += c.finish_reason == "stop"
            m = FOREIGN[p["lang"]].search(c.text)
            if m:
                s["leaked"] += 1
    for s in stats.values():
        s["leak_rate"] = s["leaked"] / s["responses"]
        s["finished_rate"] = s["finished"] / s["responses"]
    return stats


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(ROOT / "data/models/testbed"))
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--temperature", type=float, default=0.8)
    a = ap.parse_args()
    for lang, s in check_testbed(a.model, a.n, a.temperature).items():
        print(f"{lang}: {s['responses']} answers, {100 * s['leak_rate']:.1f}% leak, {100 * s['finished_rate']:.1f}% end with <|im_end|>")
