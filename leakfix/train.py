"""Stage `train`: unlikelihood fine-tuning at the leak positions, through accelerate.

A causal LM's logits at position t depend only on tokens ≤ t, so each record's context is cut
right before its last leak, and the LM head is applied only to the hidden states at the leak
positions — never the full T×V logits. The seed's objective (`seed-ul`) is the default; the
`leakfix` objective adds a KL tether to the frozen base model at the same positions.
"""

from __future__ import annotations

import copy
import logging
import math
import shutil
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field, model_validator
from torch import nn
from tqdm import tqdm

from leakfix.artifacts import Counts, Rejects, StageResult, read_table, run_stage, write_table
from leakfix.config import StageConfig
from leakfix.losses import kl_to_base, seed_ul_loss, set_prob
from leakfix.schemas import RECORDS, TRAIN_LOG

log = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class TrainConfig(StageConfig):
    objective: Literal["seed-ul", "leakfix"] = Field("seed-ul", description="seed-ul: the seed's loss; leakfix: plus a KL tether to the base model")
    lr: float = Field(5e-6, gt=0, description="peak learning rate (the seed's default)")
    epochs: int = Field(2, ge=1, description="passes over the records")
    alpha_ul: float = Field(1.0, ge=0, description="weight of −log(1 − p_bad)")
    alpha_rf: float = Field(0.1, ge=0, description="weight of −log p_good")
    beta_kl: float = Field(0.1, ge=0, description="leakfix objective: weight of KL(base ‖ tuned) at the trained positions")
    batch_size: int = Field(4, ge=1, description="records per micro-batch (per process)")
    grad_accum: int = Field(1, ge=1, description="micro-batches per optimiser step")
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="linear warm-up share of the steps")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay")
    max_grad_norm: float = Field(1.0, gt=0, description="gradient-norm clip")
    max_length: int = Field(2048, ge=8, description="records whose context is longer are rejected")
    seed: int = Field(0, description="init of the data order")
    dtype: Literal["float32", "bfloat16", "float16"] = Field("float32", description="weights while training (fp32 keeps 5e-6 steps from vanishing in bf16 rounding)")
    save_dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field("auto", description="checkpoint dtype; auto = the base model's")
    verbose_diagnostics: bool = Field(False, description="print top-5 tokens at every position before and after")
    trust_remote_code: bool = Field(False, description="run model code from the hub (off: secure by default)")

    @model_validator(mode="after")
    def _check(self) -> "TrainConfig":
        if self.objective == "seed-ul" and self.alpha_ul == 0 and self.alpha_rf == 0:
            raise ValueError("alpha_ul and alpha_rf are both 0: nothing to train")
        return self


class PositionLogits(nn.Module):
    """Wraps a causal LM: logits only at the requested (row, position) pairs."""

    def __init__(self, lm: nn.Module) -> None:
        super().__init__()
        self.lm = lm

    def forward(self, input_ids, attention_mask, rows, cols) -> torch.Tensor:
        body = getattr(self.lm, self.lm.base_model_prefix)
        hidden = body(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.lm.get_output_embeddings()(hidden[rows, cols])


def _pad(ids: list[list[int]], width: int) -> torch.Tensor:
    return torch.tensor([x + [-1] * (width - len(x)) for x in ids], dtype=torch.long)


def load_examples(path: Path, cfg: TrainConfig, rejects: Rejects) -> list[dict]:
    """Records → examples (context ids, logit columns, padded bad/good sets); bad rows rejected."""
    out = []
    for row, r in enumerate(read_table(path, RECORDS).to_pylist()):
        resp, pos = r["response_token_ids"], r["positions"]
        problem = None
        if not pos:
            problem = ("positions", "no positions")
        elif any(not (0 <= p < len(resp)) for p in pos) or sorted(pos) != pos:
            problem = ("positions", f"positions {pos} not increasing inside a response of {len(resp)} tokens")
        elif len(r["bad_token_ids"]) != len(pos) or len(r["good_token_ids"]) != len(pos):
            problem = ("bad_token_ids", "one bad set and one good set per position expected")
        elif any(not b for b in r["bad_token_ids"]) or any(not g for g in r["good_token_ids"]):
            problem = ("good_token_ids", "empty bad or good set")
        elif any(set(b) & set(g) for b, g in zip(r["bad_token_ids"], r["good_token_ids"])):
            problem = ("good_token_ids", "a token is both bad and good")
        elif len(r["prompt_token_ids"]) + pos[-1] > cfg.max_length:
            problem = ("response_token_ids", f"context {len(r['prompt_token_ids']) + pos[-1]} tokens > max_length {cfg.max_length}")
        if problem:
            rejects.add(path, row, problem[1], problem[0], payload={"record_id": r["record_id"]})
            continue
        prompt = r["prompt_token_ids"]
        out.append({
            # Context up to (not including) the last leak: its logits predict every leak position.
            "input_ids": prompt + resp[: pos[-1]],
            "cols": [len(prompt) + p - 1 for p in pos],
            "bad": r["bad_token_ids"],
            "good": r["good_token_ids"],
        })
    return out


def collate(batch: list[dict]) -> dict[str, torch.Tensor]:
    width = max(len(b["input_ids"]) for b in batch)
    ids = torch.zeros(len(batch), width, dtype=torch.long)
    mask = torch.zeros(len(batch), width, dtype=torch.long)
    rows, cols, bad, good = [], [], [], []
    for i, b in enumerate(batch):
        ids[i, : len(b["input_ids"])] = torch.tensor(b["input_ids"])
        mask[i, : len(b["input_ids"])] = 1
        rows += [i] * len(b["cols"])
        cols += b["cols"]
        bad += b["bad"]
        good += b["good"]
    return {
        "input_ids": ids, "attention_mask": mask, "rows": torch.tensor(rows), "cols": torch.tensor(cols),
        "bad": _pad(bad, max(map(len, bad))), "good": _pad(good, max(map(len, good))),
    }


@torch.no_grad()
def diagnostics(net: nn.Module, examples: list[dict], batch_size: int, tokenizer=None, verbose: bool = False) -> tuple[float, float]:
    """Mean p(bad set) and p(good set) over every position of `examples`."""
    net.eval()
    pb, pg = [], []
    for i in range(0, len(examples), batch_size):
        b = collate(examples[i : i + batch_size])
        logits = net(b["input_ids"], b["attention_mask"], b["rows"], b["cols"]).float()
        lp = torch.log_softmax(logits, -1)
        pb.append(set_prob(lp, b["bad"]))
        pg.append(set_prob(lp, b["good"]))
        if verbose and tokenizer is not None:
            for j, (row, col) in enumerate(zip(b["rows"].tolist(), b["cols"].tolist())):
                top = lp[j].topk(5)
                cands = ", ".join(f"{tokenizer.decode([t])!r} {p:.1%}" for t, p in zip(top.indices.tolist(), top.values.exp().tolist()))
                log.info("  record %d, logit column %d: top-5 %s", i + row, col, cands)
    net.train()
    if not pb:
        return float("nan"), float("nan")
    return torch.cat(pb).mean().item(), torch.cat(pg).mean().item()


def _copy_tokenizer_files(model: str, dest: Path, trust_remote_code: bool) -> None:
    src = Path(model)
    if src.is_dir():
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
                     "generation_config.json", "vocab.json", "merges.txt"):
            if (src / name).exists():
                shutil.copy2(src / name, dest / name)
        return
    from transformers import AutoTokenizer, GenerationConfig

    AutoTokenizer.from_pretrained(model, trust_remote_code=trust_remote_code).save_pretrained(dest)
    try:
        GenerationConfig.from_pretrained(model).save_pretrained(dest)
    except OSError:
        pass


def run(config: TrainConfig, records: Path, model: str | Path, out_dir: Path, force: bool = False) -> StageResult:
    inputs = {"records": records, "model": str(model)}

    def body(out: Path) -> Counts:
        from accelerate import Accelerator
        from accelerate.utils import set_seed
        from transformers import AutoModelForCausalLM, AutoTokenizer, get_scheduler

        accelerator = Accelerator(gradient_accumulation_steps=config.grad_accum)
        set_seed(config.seed)
        rejects = Rejects("train")
        examples = load_examples(records, config, rejects)
        n_in = len(examples) + len(rejects)
        lm = AutoModelForCausalLM.from_pretrained(
            str(model), dtype=_DTYPES[config.dtype], trust_remote_code=config.trust_remote_code, use_safetensors=True
        )
        base_dtype = lm.config.dtype if config.save_dtype == "auto" else _DTYPES[config.save_dtype]
        tok = AutoTokenizer.from_pretrained(str(model), trust_remote_code=config.trust_remote_code) if config.verbose_diagnostics else None
        net = PositionLogits(lm)
        base = None
        if config.objective == "leakfix" and config.beta_kl > 0:
            base = PositionLogits(copy.deepcopy(lm)).eval().requires_grad_(False)

        p_bad_pre, p_good_pre = diagnostics(net, examples, config.batch_size, tok, config.verbose_diagnostics)
        pre = f"Pre-training  - Avg bad token prob: {p_bad_pre:.2%}  | Avg good token prob: {p_good_pre:.2%}"
        accelerator.print(pre)
        log.info(pre)

        g = torch.Generator().manual_seed(config.seed)
        dl = torch.utils.data.DataLoader(examples, batch_size=config.batch_size, shuffle=True, collate_fn=collate, generator=g)
        opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        steps = max(1, config.epochs * math.ceil(len(dl) / config.grad_accum))
        sched = get_scheduler("linear", opt, num_warmup_steps=int(config.warmup_ratio * steps), num_training_steps=steps)
        net, opt, dl, sched = accelerator.prepare(net, opt, dl, sched)
        rows = []
        step = 0
        bar = tqdm(total=steps, desc="train", unit="step", disable=not accelerator.is_local_main_process)
        for epoch in range(config.epochs):
            for batch in dl:
                with accelerator.accumulate(net):
                    logits = net(batch["input_ids"], batch["attention_mask"], batch["rows"], batch["cols"])
                    parts = seed_ul_loss(logits, batch["bad"], batch["good"], config.alpha_ul, config.alpha_rf)
                    loss, kl = parts.loss, torch.zeros(())
                    if base is not None:
                        with torch.no_grad():
                            base_logits = base(batch["input_ids"], batch["attention_mask"], batch["rows"], batch["cols"])
                        kl = kl_to_base(logits, base_logits)
                        loss = loss + config.beta_kl * kl
                    accelerator.backward(loss)
                    if accelerator.sync_gradients:
                        accelerator.clip_grad_norm_(net.parameters(), config.max_grad_norm)
                    opt.step()
                    sched.step()
                    opt.zero_grad()
                if accelerator.sync_gradients:
                    step += 1
                    vals = accelerator.reduce(torch.stack([loss.detach(), parts.ul.detach(), parts.rf.detach(), kl.detach(), parts.p_bad, parts.p_good]).float(), "mean")
                    rows.append({
                        "step": step, "epoch": epoch, "loss": vals[0].item(), "loss_ul": vals[1].item(), "loss_rf": vals[2].item(),
                        "loss_tether": (config.beta_kl * vals[3]).item() if base is not None else 0.0,
                        "p_bad": vals[4].item(), "p_good": vals[5].item(), "kl": vals[3].item(), "lr": sched.get_last_lr()[0], "split": "train",
                    })
                    bar.update(1)
                    bar.set_postfix(loss=f"{rows[-1]['loss']:.3f}", p_bad=f"{rows[-1]['p_bad']:.3f}")
        bar.close()
        net = accelerator.unwrap_model(net)
        p_bad_post, p_good_post = diagnostics(net, examples, config.batch_size, tok, config.verbose_diagnostics)
        for line in (
            f"Post-training - Avg bad token prob: {p_bad_post:.2%}   | Avg good token prob: {p_good_post:.2%}",
            f"Change        - Bad: {p_bad_post - p_bad_pre:+.2%}                | Good: {p_good_post - p_good_pre:+.2%}",
        ):
            accelerator.print(line)
            log.info(line)
        if accelerator.is_main_process:
            ckpt = out / "checkpoint"
            tmp = out / ".checkpoint.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            net.lm.to(base_dtype).save_pretrained(tmp, safe_serialization=True)
            _copy_tokenizer_files(str(model), tmp, config.trust_remote_code)
            shutil.rmtree(ckpt, ignore_errors=True)
            tmp.rename(ckpt)
            write_table(rows, TRAIN_LOG, out / "train_log.parquet")
            rejects.write(out)
        accelerator.wait_for_everyone()
        return Counts(
            rows_in=n_in, rows_out=len(examples), rows_rejected=len(rejects),
            extra={"steps": step, "positions": sum(len(e["cols"]) for e in examples),
                   "p_bad_pre": p_bad_pre, "p_good_pre": p_good_pre, "p_bad_post": p_bad_post, "p_good_post": p_good_post},
        )

    return run_stage("train", config, inputs, out_dir, body, force=force)
