"""Prompt sets: JSONL files of `{"id", "lang", "prompt"}`, split into mine / heldout by a stable hash.

The split depends only on the prompt id (and a salt), so a prompt is held out in every run and
every stage: evaluation never sees a prompt that was mined or trained on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from leakfix.artifacts import Rejects


@dataclass(frozen=True)
class Prompt:
    id: str
    lang: str
    prompt: str
    split: str


def split_of(prompt_id: str, heldout_fraction: float, salt: str = "leakfix") -> str:
    h = int.from_bytes(hashlib.sha256(f"{salt}:{prompt_id}".encode()).digest()[:8], "big")
    return "heldout" if h / 2**64 < heldout_fraction else "mine"


def load_prompts(
    path: Path, heldout_fraction: float, rejects: Rejects | None = None, known_langs: set[str] | None = None
) -> list[Prompt]:
    """Read a prompt file; bad lines raise (or, with `rejects`, are recorded) naming file, line and field."""
    out: list[Prompt] = []
    seen: set[str] = set()
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            problem: tuple[str | None, str] | None = None
            row: dict = {}
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                problem = (None, f"invalid JSON: {e.msg}")
            if problem is None:
                for f in ("id", "lang", "prompt"):
                    if not isinstance(row.get(f), str) or not row[f].strip():
                        problem = (f, f"missing or empty string field {f!r}")
                        break
            if problem is None and row["id"] in seen:
                problem = ("id", f"duplicate id {row['id']!r}")
            if problem is None and known_langs is not None and row["lang"] not in known_langs:
                problem = ("lang", f"unknown language {row['lang']!r}")
            if problem is not None:
                field, reason = problem
                if rejects is None:
                    raise ValueError(f"{path}: line {lineno}" + (f", field {field!r}" if field else "") + f": {reason}")
                rejects.add(path, lineno - 1, reason, field, payload=line.strip())
                continue
            seen.add(row["id"])
            out.append(Prompt(row["id"], row["lang"], row["prompt"], split_of(row["id"], heldout_fraction)))
    return out
