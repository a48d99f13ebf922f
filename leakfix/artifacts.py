"""Files between stages: atomic Parquet writes, rejects, and the `_manifest.json` that makes reruns skip.

A stage's outputs are written under temporary names and renamed into place; the manifest is
written last. A stage whose manifest fingerprint (config, input content hashes, code version)
matches is skipped; a stage killed half-way has no manifest and is redone from scratch, so a
resumed run never duplicates rows.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import pyarrow as pa
import pyarrow.parquet as pq

from leakfix import __version__
from leakfix.schemas import REJECTS

log = logging.getLogger(__name__)

MANIFEST = "_manifest.json"


class StageError(RuntimeError):
    """Bad input or a broken invariant; the message names the file, row and field."""


@dataclass
class Counts:
    """What a stage body reports: rows read, rows written, rows rejected, plus free-form extras."""

    rows_in: int
    rows_out: int
    rows_rejected: int = 0
    # Stages whose output rows are not 1:1 with input rows (detect: spans per response) say so,
    # and the invariant is checked on `rows_in == rows_accounted + rows_rejected` instead.
    rows_accounted: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class StageResult:
    stage: str
    out_dir: Path
    rows_in: int
    rows_out: int
    rows_rejected: int
    wall_s: float
    skipped: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["out_dir"] = str(self.out_dir)
        return d


def write_table(rows: Iterable[Mapping[str, Any]] | pa.Table, schema: pa.Schema, path: Path) -> int:
    """Write rows to `path` with `schema` (zstd), atomically. Returns the row count."""
    table = rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(list(rows), schema=schema)
    if isinstance(rows, pa.Table):
        table = table.select(schema.names).cast(schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)
    return table.num_rows


def require_columns(path: Path, schema: pa.Schema) -> None:
    """Fail clearly, naming the file and columns, when an input lacks what a stage reads."""
    if not Path(path).exists():
        raise StageError(f"{path}: input file does not exist")
    have = pq.read_schema(path).names
    missing = [n for n in schema.names if n not in have]
    if missing:
        raise StageError(f"{path}: missing column(s) {missing}; expected the schema of {schema.names}")


def read_table(path: Path, schema: pa.Schema | None = None) -> pa.Table:
    """Read a whole Parquet artifact (small ones: leaks, records, metrics), checking its columns."""
    if schema is not None:
        require_columns(path, schema)
    elif not Path(path).exists():
        raise StageError(f"{path}: input file does not exist")
    return pq.read_table(path)


class Rejects:
    """Collects rows a stage could not process; written as `rejects.parquet` (possibly empty)."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.rows: list[dict[str, Any]] = []

    def add(self, source: Path | str, row: int, reason: str, field: str | None = None, payload: Any = None) -> None:
        log.warning("%s: reject %s row %d%s: %s", self.stage, source, row, f" field {field!r}" if field else "", reason)
        self.rows.append(
            {
                "stage": self.stage,
                "source": str(source),
                "row": int(row),
                "field": field,
                "reason": reason,
                "payload": json.dumps(payload, ensure_ascii=False, default=str) if payload is not None else None,
            }
        )

    def __len__(self) -> int:
        return len(self.rows)

    def write(self, out_dir: Path) -> int:
        return write_table(self.rows, REJECTS, out_dir / "rejects.parquet")


def file_hash(path: Path) -> str:
    """Content hash of a file or of every file under a folder (sorted by relative path)."""
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    for f in files:
        if f != path:
            h.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def fingerprint(config: Any, inputs: Mapping[str, Path | str | None]) -> dict[str, Any]:
    cfg = config.model_dump(mode="json") if hasattr(config, "model_dump") else config
    ins = {}
    for k, p in inputs.items():
        if p is None:
            ins[k] = None
        elif Path(p).exists():
            ins[k] = file_hash(Path(p))
        else:
            ins[k] = str(p)  # hub ids and the like: the name is the identity
    return {"config": cfg, "inputs": ins, "code_version": __version__}


def load_manifest(out_dir: Path) -> dict[str, Any] | None:
    p = out_dir / MANIFEST
    if not p.exists():
        return None
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError:
        return None


def run_stage(
    stage: str,
    config: Any,
    inputs: Mapping[str, Path | str | None],
    out_dir: Path,
    body: Callable[[Path], Counts],
    force: bool = False,
) -> StageResult:
    """Run `body(out_dir)` unless a matching manifest says it already ran; then write the manifest."""
    out_dir = Path(out_dir)
    fp = fingerprint(config, inputs)
    old = load_manifest(out_dir)
    if not force and old is not None and old.get("fingerprint") == fp:
        log.info("%s: up to date in %s, skipped", stage, out_dir)
        c = old["counts"]
        return StageResult(stage, out_dir, c["rows_in"], c["rows_out"], c["rows_rejected"], old["wall_s"], True, c.get("extra", {}))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MANIFEST).unlink(missing_ok=True)
    t0 = time.perf_counter()
    counts = body(out_dir)
    wall = time.perf_counter() - t0
    accounted = counts.rows_out if counts.rows_accounted is None else counts.rows_accounted
    if counts.rows_in != accounted + counts.rows_rejected:
        raise StageError(
            f"{stage}: rows in ({counts.rows_in}) != rows out ({accounted}) + rejected ({counts.rows_rejected})"
        )
    manifest = {
        "stage": stage,
        "fingerprint": fp,
        "counts": asdict(counts),
        "wall_s": round(wall, 3),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "outputs": sorted(p.name for p in out_dir.iterdir() if not p.name.startswith((".", "_"))),
    }
    tmp = out_dir / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False, default=str))
    os.replace(tmp, out_dir / MANIFEST)
    log.info("%s: %d in, %d out, %d rejected in %.1fs", stage, counts.rows_in, counts.rows_out, counts.rows_rejected, wall)
    return StageResult(stage, out_dir, counts.rows_in, counts.rows_out, counts.rows_rejected, wall, False, counts.extra)
