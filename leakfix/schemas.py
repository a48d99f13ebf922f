"""Explicit pyarrow schemas for every artifact a stage writes (DESIGN.md, stage contracts).

One schema per file; stages build tables with ``pa.Table.from_pylist(rows, schema=...)`` so a
missing or mistyped field fails at write time, not three stages later.
"""

from __future__ import annotations

import pyarrow as pa

_ids = pa.list_(pa.int32())

# generate -> generations.parquet (one sampled response); evaluate reuses it with `role` set.
GENERATIONS = pa.schema(
    [
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("sample", pa.int32(), nullable=False),
        pa.field("lang", pa.string(), nullable=False, metadata={"help": "expected response language"}),
        pa.field("prompt", pa.string(), nullable=False),
        pa.field("prompt_token_ids", _ids, nullable=False, metadata={"help": "chat-formatted prompt"}),
        pa.field("token_ids", _ids, nullable=False, metadata={"help": "generated ids, stop token excluded"}),
        pa.field("text", pa.string(), nullable=False),
        pa.field("finish_reason", pa.string()),
        pa.field("token_logprobs", pa.list_(pa.float32()), metadata={"help": "logprob of each sampled token"}),
        pa.field("topk_ids", pa.list_(_ids), metadata={"help": "per generated position, top-k ids"}),
        pa.field("topk_logprobs", pa.list_(pa.list_(pa.float32()))),
        pa.field("model", pa.string(), nullable=False),
        pa.field("model_revision", pa.string()),
        pa.field("role", pa.string(), metadata={"help": "mine | base | tuned"}),
        pa.field("temperature", pa.float32()),
        pa.field("seed", pa.int64()),
    ]
)

# detect -> leaks.parquet (one leaked span)
LEAKS = pa.schema(
    [
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("sample", pa.int32(), nullable=False),
        pa.field("lang", pa.string(), nullable=False),
        pa.field("leak_idx", pa.int32(), nullable=False, metadata={"help": "index of the leak in its response"}),
        pa.field("char_start", pa.int32(), nullable=False),
        pa.field("char_end", pa.int32(), nullable=False, metadata={"help": "exclusive"}),
        pa.field("token_start", pa.int32(), metadata={"help": "first generated token touching the span"}),
        pa.field("token_end", pa.int32(), metadata={"help": "exclusive"}),
        pa.field("text", pa.string(), nullable=False),
        pa.field("script", pa.string(), nullable=False),
        pa.field("lid_label", pa.string()),
        pa.field("lid_score", pa.float32()),
        pa.field("rule", pa.string(), nullable=False, metadata={"help": "rule that fired"}),
    ]
)

# detect -> detections.parquet (one response with its verdict)
DETECTIONS = pa.schema(
    [
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("sample", pa.int32(), nullable=False),
        pa.field("lang", pa.string(), nullable=False),
        pa.field("role", pa.string()),
        pa.field("verdict", pa.string(), nullable=False, metadata={"help": "clean | leaked | wrong_language"}),
        pa.field("n_leaks", pa.int32(), nullable=False),
        pa.field("n_leak_tokens", pa.int32(), nullable=False),
        pa.field("n_tokens", pa.int32(), nullable=False),
        pa.field("n_chars", pa.int32(), nullable=False),
        pa.field("n_lines", pa.int32()),
        pa.field("n_lines_wrong", pa.int32(), metadata={"help": "lines whose LID is not the expected language"}),
        pa.field("n_words", pa.int32()),
        pa.field("n_words_wrong", pa.int32()),
    ]
)

# correct -> records.parquet (one response, all its leaks packed; see correct.py)
RECORDS = pa.schema(
    [
        pa.field("record_id", pa.string(), nullable=False),
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("sample", pa.int32(), nullable=False),
        pa.field("lang", pa.string(), nullable=False),
        pa.field("prompt_token_ids", _ids, nullable=False),
        pa.field("response_token_ids", _ids, nullable=False, metadata={"help": "clean response up to and incl. the last fix"}),
        pa.field("positions", _ids, nullable=False, metadata={"help": "index into response_token_ids of each leak"}),
        pa.field("bad_token_ids", pa.list_(_ids), nullable=False, metadata={"help": "per position, the bad set"}),
        pa.field("good_token_ids", pa.list_(_ids), nullable=False, metadata={"help": "per position, the good set"}),
        pa.field("p_bad", pa.list_(pa.float32()), metadata={"help": "per position, generation-time p of the bad set"}),
        pa.field("p_good", pa.list_(pa.float32())),
        pa.field("chosen", pa.string(), nullable=False),
        pa.field("rejected", pa.string(), nullable=False),
        pa.field("leak_tokens", pa.list_(pa.string()), nullable=False),
        pa.field("corrected_token", pa.list_(pa.string()), nullable=False),
        pa.field("source", pa.string(), metadata={"help": "where the good token came from (topk, import, ...)"}),
    ]
)

# train -> train_log.parquet (one optimiser step)
TRAIN_LOG = pa.schema(
    [
        pa.field("step", pa.int32(), nullable=False),
        pa.field("epoch", pa.int32(), nullable=False),
        pa.field("loss", pa.float32(), nullable=False),
        pa.field("loss_ul", pa.float32()),
        pa.field("loss_rf", pa.float32()),
        pa.field("loss_tether", pa.float32()),
        pa.field("p_bad", pa.float32()),
        pa.field("p_good", pa.float32()),
        pa.field("kl", pa.float32(), metadata={"help": "drift to the base model at trained positions (nats)"}),
        pa.field("lr", pa.float32()),
        pa.field("split", pa.string(), metadata={"help": "train | heldout"}),
    ]
)

# evaluate -> metrics.parquet (one metric of one model on one language)
METRICS = pa.schema(
    [
        pa.field("metric", pa.string(), nullable=False),
        pa.field("model", pa.string(), nullable=False, metadata={"help": "base | tuned"}),
        pa.field("lang", pa.string(), nullable=False, metadata={"help": "language code or 'all'"}),
        pa.field("value", pa.float64(), nullable=False),
        pa.field("ci_low", pa.float64()),
        pa.field("ci_high", pa.float64()),
        pa.field("n", pa.int64(), nullable=False),
        pa.field("temperature", pa.float32()),
        pa.field("p_value", pa.float64(), metadata={"help": "paired test of base vs tuned (on tuned rows)"}),
    ]
)

# every stage -> rejects.parquet (rows that could not be processed, with why)
REJECTS = pa.schema(
    [
        pa.field("stage", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False, metadata={"help": "input file"}),
        pa.field("row", pa.int64(), nullable=False, metadata={"help": "0-based row in the input file"}),
        pa.field("field", pa.string()),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("payload", pa.string(), metadata={"help": "the row as JSON"}),
    ]
)

# prompt sets (data/prompts/*.jsonl) as read
PROMPTS = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("lang", pa.string(), nullable=False),
        pa.field("prompt", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False, metadata={"help": "mine | heldout"}),
    ]
)
