"""Stage `correct`: turn every detected leak into a token-level correction.

For a leak at generated position p the model's own top-k at p usually already holds an
in-language token: the good set is those candidates (ranked by probability), the bad set is the
sampled token plus its variants (the same word with/without a leading space, other top-k
candidates in a foreign script). All leaks of one response are packed into one row; the
response is rewritten with each leak replaced by the best good token, so later leaks are
trained in a clean context. `records.jsonl` holds the same corrections in the seed's format,
one line per leak, so the seed's script can train on our records.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from pydantic import Field
from tqdm import tqdm

from leakfix.artifacts import Counts, Rejects, StageResult, read_table, require_columns, run_stage, write_table
from leakfix.config import StageConfig
from leakfix.langs import token_class
from leakfix.schemas import GENERATIONS, LEAKS, RECORDS

log = logging.getLogger(__name__)


class CorrectConfig(StageConfig):
    max_bad: int = Field(4, ge=1, description="bad variants kept per position (the seed keeps at most 4)")
    max_good: int = Field(3, ge=1, description="good candidates kept per position")
    min_good_prob: float = Field(0.0, ge=0.0, le=1.0, description="drop good candidates below this probability")
    foreign_topk_as_bad: bool = Field(True, description="other top-k candidates in a foreign script join the bad set")
    space_variants: bool = Field(True, description="the leaked word with/without a leading space joins the bad set")
    trust_remote_code: bool = Field(False, description="for loading the tokenizer")


def _single_token(tokenizer, text: str) -> int | None:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return ids[0] if len(ids) == 1 else None


def bad_set(tokenizer, cfg: CorrectConfig, leaked_id: int, leaked_text: str, topk: list[int], lang: str) -> list[int]:
    bad = [leaked_id]
    # Candidates the model actually weighs come first; spelling variants fill what is left.
    if cfg.foreign_topk_as_bad:
        for t in topk:
            if t not in bad and token_class(tokenizer.decode([t]), lang) == "foreign":
                bad.append(t)
    if cfg.space_variants:
        word = leaked_text.strip()
        for v in (word, " " + word, word.capitalize(), " " + word.capitalize()):
            t = _single_token(tokenizer, v) if word else None
            if t is not None and t not in bad:
                bad.append(t)
    return bad[: cfg.max_bad]


def good_set(tokenizer, cfg: CorrectConfig, topk: list[int], topk_lp: list[float], bad: list[int], span_text: str, lang: str) -> list[tuple[int, float]]:
    good = []
    for t, lp in zip(topk, topk_lp):
        text = tokenizer.decode([t])
        # A candidate that is a piece of the leaked word would re-create the leak (但 of 但是).
        if t in bad or token_class(text, lang) != "native" or (text.strip() and text.strip() in span_text):
            continue
        if math.exp(lp) >= cfg.min_good_prob:
            good.append((t, lp))
    return good[: cfg.max_good]


def correct_response(tokenizer, cfg: CorrectConfig, gen: dict[str, Any], leaks: list[dict[str, Any]]) -> tuple[dict | None, list[tuple[dict, str]]]:
    """One packed record for a response (or None) and the leaks rejected with their reasons."""
    ids: list[int] = list(gen["token_ids"])
    new_ids: list[int] = []
    cursor = 0
    positions, bads, goods, p_bad, p_good = [], [], [], [], []
    leak_texts, good_texts = [], []
    rejected: list[tuple[dict, str]] = []
    for i, leak in enumerate(sorted(leaks, key=lambda r: r["token_start"] if r["token_start"] is not None else -1)):
        start, end = leak["token_start"], leak["token_end"]
        reason = None
        if start is None or end is None or not (0 <= start < end <= len(ids)) or start < cursor:
            reason = f"token span [{start}, {end}) invalid for a response of {len(ids)} tokens"
        elif not gen["topk_ids"] or start >= len(gen["topk_ids"]) or not gen["topk_ids"][start]:
            reason = "no top-k logprobs at the leak position (generate with logprobs > 0)"
        if reason is None:
            topk, topk_lp = list(gen["topk_ids"][start]), list(gen["topk_logprobs"][start])
            leaked_text = tokenizer.decode(ids[start:end])
            bad = bad_set(tokenizer, cfg, ids[start], leaked_text, topk, gen["lang"])
            good = good_set(tokenizer, cfg, topk, topk_lp, bad, leak["text"], gen["lang"])
            if not good:
                reason = "no in-language candidate in the model's top-k at the leak position"
        if reason is not None:
            # Later leaks would be trained in a context that still holds this one: drop them too.
            rejected.append((leak, reason))
            rejected.extend((l, "follows a leak that could not be corrected") for l in sorted(leaks, key=lambda r: r["token_start"] or 0)[i + 1 :])
            break
        new_ids.extend(ids[cursor:start])
        positions.append(len(new_ids))
        new_ids.append(good[0][0])
        cursor = end
        lp_of = dict(zip(topk, topk_lp))
        lp_of[ids[start]] = gen["token_logprobs"][start] if gen["token_logprobs"] else lp_of.get(ids[start], float("-inf"))
        bads.append(bad)
        goods.append([t for t, _ in good])
        p_bad.append(min(1.0, sum(math.exp(lp_of[t]) for t in bad if t in lp_of)))
        p_good.append(sum(math.exp(lp) for _, lp in good))
        leak_texts.append([tokenizer.decode([t]) for t in bad])
        good_texts.append(tokenizer.decode([good[0][0]]))
    if not positions:
        return None, rejected
    full = new_ids + ids[cursor:] if not rejected else new_ids
    record = {
        "record_id": f"{gen['prompt_id']}/{gen['sample']}",
        "prompt_id": gen["prompt_id"],
        "sample": gen["sample"],
        "lang": gen["lang"],
        "prompt_token_ids": gen["prompt_token_ids"],
        "response_token_ids": new_ids,  # ends with the last good token: nothing after it is trained
        "positions": positions,
        "bad_token_ids": bads,
        "good_token_ids": goods,
        "p_bad": p_bad,
        "p_good": p_good,
        "chosen": tokenizer.decode(full, skip_special_tokens=True),
        "rejected": gen["text"],
        "leak_tokens": [t for ts in leak_texts for t in ts[:1]],
        "corrected_token": good_texts,
        "source": "topk",
    }
    record["_seed_lines"] = [
        {"chosen": record["chosen"], "rejected": gen["text"], "leak_tokens": ts, "corrected_token": [g]}
        for ts, g in zip(leak_texts, good_texts)
    ]
    return record, rejected


def run(config: CorrectConfig, generations: Path, leaks: Path, model: str, out_dir: Path, force: bool = False) -> StageResult:
    from transformers import AutoTokenizer

    inputs = {"generations": generations, "leaks": leaks, "model": model}

    def body(out: Path) -> Counts:
        tok = AutoTokenizer.from_pretrained(model, trust_remote_code=config.trust_remote_code)
        rejects = Rejects("correct")
        leak_table = read_table(leaks, LEAKS)
        by_resp: dict[tuple[str, int], list[dict]] = defaultdict(list)
        for row, leak in enumerate(leak_table.to_pylist()):
            leak["_row"] = row
            by_resp[(leak["prompt_id"], leak["sample"])].append(leak)
        require_columns(generations, GENERATIONS)
        records, seed_lines = [], []
        found = set()
        for batch in pq.ParquetFile(generations).iter_batches(batch_size=1024):
            for gen in tqdm(batch.to_pylist(), desc="correct", unit="resp", leave=False):
                key = (gen["prompt_id"], gen["sample"])
                if key not in by_resp:
                    continue
                found.add(key)
                rec, rej = correct_response(tok, config, gen, by_resp[key])
                for leak, reason in rej:
                    rejects.add(leaks, leak["_row"], reason, "token_start", payload={k: v for k, v in leak.items() if k != "_row"})
                if rec is not None:
                    seed_lines.extend(rec.pop("_seed_lines"))
                    records.append(rec)
        for key in by_resp.keys() - found:
            for leak in by_resp[key]:
                rejects.add(leaks, leak["_row"], f"no response {key} in {generations}", "prompt_id")
        n = write_table(records, RECORDS, out / "records.parquet")
        tmp = out / ".records.jsonl.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            for line in seed_lines:
                fh.write(json.dumps(line, ensure_ascii=False) + "\n")
        os.replace(tmp, out / "records.jsonl")
        rejects.write(out)
        n_pos = sum(len(r["positions"]) for r in records)
        log.info("correct: %d leaks -> %d records (%d positions), %d rejected", leak_table.num_rows, n, n_pos, len(rejects))
        return Counts(rows_in=leak_table.num_rows, rows_out=n, rows_rejected=len(rejects), rows_accounted=n_pos, extra={"positions": n_pos})

    return run_stage("correct", config, inputs, out_dir, body, force=force)
