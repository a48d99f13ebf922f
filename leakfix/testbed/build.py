"""Build the testbed: a small Qwen3 model with the real Qwen vocabulary that answers in the
prompt's language and leaks wrong-language tokens at a known rate.

Training a 151,936-row output layer on CPU is what costs: instead a *compact* model is trained
whose vocabulary is the ~400 ids the corpus uses plus one "rest of the vocabulary" class. That
class's logit carries an offset of log(#unused ids), so it stands for all unused tokens at once;
writing its vector into every unused row of the full embedding gives a full-vocabulary model
whose unused tokens together keep the (tiny) mass the rest class learned.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from pydantic import Field
from tqdm import tqdm

from leakfix.config import StageConfig
from leakfix.runtime import ROOT
from leakfix.testbed.corpus import make_corpus
from leakfix.testbed.tokenizer import build_qwen_tokenizer, fix_tokenizer_config

log = logging.getLogger(__name__)

FULL_VOCAB = 151_936  # Qwen2.5's padded embedding size


class TestbedConfig(StageConfig):
    seed: int = Field(0, description="seeds the corpus, the init and the batch order")
    n_chats: int = Field(4000, ge=100, description="chats in the training corpus")
    leak_prob: float = Field(0.2, ge=0.0, le=1.0, description="chance that a connective slot holds a wrong-language word")
    hidden_size: int = Field(256, description="model width")
    num_layers: int = Field(2, description="transformer layers")
    num_heads: int = Field(4, description="attention heads (head_dim 64: vLLM's CPU attention needs it)")
    num_kv_heads: int = Field(2, description="key/value heads")
    intermediate_size: int = Field(512, description="MLP width")
    epochs: int = Field(4, ge=1, description="passes over the corpus")
    batch_size: int = Field(32, ge=1, description="chats per step")
    lr: float = Field(3e-3, gt=0, description="peak AdamW learning rate (cosine decay, short warm-up)")
    threads: int = Field(2, ge=1, description="torch threads (fixed, for determinism)")


def _model_config(cfg: TestbedConfig, vocab: int, pad: int = 151643):
    from transformers import Qwen3Config

    return Qwen3Config(
        vocab_size=vocab, hidden_size=cfg.hidden_size, num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads, num_key_value_heads=cfg.num_kv_heads, head_dim=64,
        intermediate_size=cfg.intermediate_size, tie_word_embeddings=True, max_position_embeddings=2048,
        bos_token_id=151643, eos_token_id=151645, pad_token_id=pad, rope_theta=10000.0,
    )


def _encode(tok, chats) -> tuple[list[list[int]], list[int]]:
    """Token ids of each chat and where its answer starts (loss is on the answer only)."""
    seqs, starts = [], []
    for c in chats:
        prompt = tok.apply_chat_template([{"role": "user", "content": c.prompt}], add_generation_prompt=True, tokenize=False)
        p = tok(prompt, add_special_tokens=False)["input_ids"]
        a = tok(c.answer + "<|im_end|>", add_special_tokens=False)["input_ids"]
        seqs.append(p + a)
        starts.append(len(p))
    return seqs, starts


def build_testbed(config: TestbedConfig | None = None, out_dir: Path = ROOT / "data" / "models" / "testbed", force: bool = False) -> Path:
    """Train (or reuse, when its manifest matches `config`) the testbed under `out_dir`."""
    from transformers import GenerationConfig, Qwen3ForCausalLM

    cfg = config or TestbedConfig()
    out_dir = Path(out_dir)
    manifest = out_dir / "_manifest.json"
    if not force and manifest.exists() and json.loads(manifest.read_text())["config"] == cfg.model_dump():
        log.info("testbed: up to date in %s", out_dir)
        return out_dir
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        tok = build_qwen_tokenizer()
        chats = make_corpus(cfg.n_chats, cfg.leak_prob, cfg.seed)
        seqs, starts = _encode(tok, chats)
        used = sorted({t for s in seqs for t in s} | {151643, 151644, 151645})
        to_compact = {t: i for i, t in enumerate(used)}
        rest = len(used)  # the extra class standing for every unused id
        rest_offset = math.log(FULL_VOCAB - len(used))
        n_tokens = sum(len(s) for s in seqs)
        log.info("testbed: %d chats, %d tokens, %d distinct ids, %.1f%% of answers leak", len(chats), n_tokens, len(used), 100 * sum(c.n_leaks > 0 for c in chats) / len(chats))

        model = Qwen3ForCausalLM(_model_config(cfg, len(used) + 1, pad=to_compact[151643]))
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0, betas=(0.9, 0.98))
        steps = cfg.epochs * math.ceil(len(seqs) / cfg.batch_size)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 50) * 0.5 * (1 + math.cos(math.pi * s / steps)))
        g = torch.Generator().manual_seed(cfg.seed)
        model.train()
        bar = tqdm(total=steps, desc="testbed train", unit="step")
        loss_ema = None
        for _ in range(cfg.epochs):
            order = torch.randperm(len(seqs), generator=g).tolist()
            for b in range(0, len(order), cfg.batch_size):
                idx = order[b : b + cfg.batch_size]
                width = max(len(seqs[i]) for i in idx)
                ids = torch.zeros(len(idx), width, dtype=torch.long)
                labels = torch.full((len(idx), width), -100, dtype=torch.long)
                mask = torch.zeros(len(idx), width, dtype=torch.long)
                for r, i in enumerate(idx):
                    c = torch.tensor([to_compact[t] for t in seqs[i]])
                    ids[r, : len(c)], mask[r, : len(c)] = c, 1
                    labels[r, starts[i] : len(c)] = c[starts[i] :]
                logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
                logits = torch.cat([logits[..., :rest], logits[..., rest:] + rest_offset], dim=-1)
                loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                sched.step()
                loss_ema = loss.item() if loss_ema is None else 0.95 * loss_ema + 0.05 * loss.item()
                bar.update(1)
                bar.set_postfix(loss=f"{loss_ema:.3f}")
        bar.close()

        # Write the compact model back into the full vocabulary.
        full = Qwen3ForCausalLM(_model_config(cfg, FULL_VOCAB))
        state = {k: v for k, v in model.state_dict().items() if "embed_tokens" not in k and "lm_head" not in k}
        emb = model.get_input_embeddings().weight.detach()
        full_emb = emb[rest].repeat(FULL_VOCAB, 1)
        full_emb[torch.tensor(used)] = emb[:rest]
        missing, unexpected = full.load_state_dict({**state, "model.embed_tokens.weight": full_emb}, strict=False)
        assert not unexpected and all("lm_head" in k for k in missing), (missing, unexpected)
        full.tie_weights()
        full.generation_config = GenerationConfig(
            bos_token_id=151643, eos_token_id=[151645, 151643], pad_token_id=151643,
            do_sample=True, temperature=0.8, top_p=0.95,
        )
        tmp = out_dir.with_name(out_dir.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        full.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        fix_tokenizer_config(tmp)
        wall = time.perf_counter() - t0
        (tmp / "_manifest.json").write_text(json.dumps(
            {"config": cfg.model_dump(), "chats": len(chats), "tokens": n_tokens, "distinct_ids": len(used),
             "final_loss": round(loss_ema or float("nan"), 4), "wall_s": round(wall, 1)}, indent=2))
        shutil.rmtree(out_dir, ignore_errors=True)
        tmp.rename(out_dir)
        log.info("testbed: built in %.0fs, final loss %.3f -> %s", wall, loss_ema, out_dir)
        return out_dir
    finally:
        torch.set_num_threads(threads)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    build_testbed(force=True)
