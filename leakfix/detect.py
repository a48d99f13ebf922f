"""Stage `detect`: find wrong-language spans in responses and map them onto generated tokens.

Candidates are runs of letters outside the expected language's native scripts (Latin in
Japanese, Simplified-only Han in Japanese, Hangul in Japanese, Latin in Korean/Russian…) plus
words that are written with native characters but belong to another language (但是 in
Japanese). Named exclusion rules drop what is not a leak (URLs, code, acronyms, units, terms the
prompt used, glosses in parentheses), so every kept or dropped span says why. fastText labels
each kept span and each line (for the Language Confusion Benchmark's line-level figures).
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow.parquet as pq
from pydantic import Field
from tqdm import tqdm

from leakfix import lid
from leakfix.artifacts import Counts, Rejects, StageResult, require_columns, run_stage, write_table
from leakfix.config import StageConfig
from leakfix.langs import char_is_native, char_script, get_profile
from leakfix.schemas import DETECTIONS, GENERATIONS, LEAKS
from leakfix.tokens import token_bytes, token_char_offsets

log = logging.getLogger(__name__)

_JOINERS = set(" -'’")
_URL = re.compile(r"(?:https?://|www\.)\S+|[\w.+-]+@[\w-]+\.[\w.-]+")
_CODE = re.compile(r"```.*?```|`[^`\n]+`", re.S)
_UNIT = re.compile(r"\d[\d.,]*\s*$")
_PAREN = re.compile(r"[（(]([^（）()]{1,60})[）)]")


class DetectConfig(StageConfig):
    use_lid: bool = Field(True, description="label kept spans and lines with fastText")
    min_span_letters: int = Field(1, ge=1, description="ignore foreign runs with fewer letters")
    wrong_language_threshold: float = Field(0.5, gt=0, le=1, description="fastText score (or, without LID, share of foreign letters) from which a whole response counts as wrong-language")
    allow_urls: bool = Field(True, description="URLs and e-mail addresses are not leaks")
    allow_code: bool = Field(True, description="`inline code` and ``` blocks are not leaks")
    allow_acronyms: bool = Field(True, description="all-caps tokens of ≤ 5 letters (API, GPU) and tokens with digits (GPT-4) are not leaks")
    allow_units: bool = Field(True, description="a unit right after a number (5 km, 3GB) is not a leak")
    allow_prompt_terms: bool = Field(True, description="a term the prompt itself used is not a leak")
    allow_glosses: bool = Field(True, description="a parenthetical gloss right after a native term, 東京（Tokyo）, is not a leak")
    allow_identifiers: bool = Field(True, description="CamelCase / snake_case identifiers (iPhone, JavaScript) are not leaks")
    tokenizer: str | None = Field(None, description="tokenizer for token spans (default: the generations' model)")


@dataclass
class Span:
    start: int
    end: int  # exclusive
    text: str
    script: str
    rule: str  # why it was kept ("script", "foreign_word") or dropped ("url", "code", ...)
    lid_label: str | None = None
    lid_score: float | None = None


@dataclass
class TextDetection:
    verdict: str  # clean | leaked | wrong_language
    spans: list[Span]
    dropped: list[Span] = field(default_factory=list)
    n_lines: int = 0
    n_lines_wrong: int = 0
    n_words: int = 0
    n_words_wrong: int = 0


def _candidates(text: str, profile) -> tuple[list[Span], int, int]:
    """Runs of foreign letters (joined across spaces/hyphens), plus the letter counts."""
    spans: list[Span] = []
    n_letters = n_foreign = 0
    start = last = -1
    for i, ch in enumerate(text):
        script = char_script(ch)
        if script == "Common":
            if start >= 0 and ch not in _JOINERS:
                spans.append(Span(start, last + 1, text[start : last + 1], char_script(text[start]), "script"))
                start = -1
            continue
        n_letters += 1
        if char_is_native(ch, profile):
            if start >= 0:
                spans.append(Span(start, last + 1, text[start : last + 1], char_script(text[start]), "script"))
                start = -1
            continue
        n_foreign += 1
        if start < 0:
            start = i
        last = i
    if start >= 0:
        spans.append(Span(start, last + 1, text[start : last + 1], char_script(text[start]), "script"))
    for w in profile.foreign_words:
        for m in re.finditer(re.escape(w), text):
            if not any(s.start <= m.start() < s.end for s in spans):
                spans.append(Span(m.start(), m.end(), w, char_script(w[0]), "foreign_word"))
    spans.sort(key=lambda s: s.start)
    return spans, n_letters, n_foreign


def _exclusion(span: Span, text: str, prompt: str | None, cfg: DetectConfig, protected: list[tuple[int, int, str]]) -> str | None:
    for a, b, rule in protected:
        if a <= span.start and span.end <= b:
            return rule
    word = span.text.strip()
    letters = [c for c in word if c.isalpha()]
    if cfg.allow_acronyms and (any(c.isdigit() for c in word) or (word.isupper() and len(letters) <= 5)):
        return "acronym"
    if cfg.allow_identifiers and (re.search(r"[a-z][A-Z]", word) or "_" in word):
        return "identifier"
    if cfg.allow_units and len(letters) <= 3 and _UNIT.search(text[: span.start]):
        return "unit"
    if cfg.allow_prompt_terms and prompt and word.lower() in prompt.lower():
        return "prompt_term"
    if cfg.allow_glosses:
        before, after = text[: span.start].rstrip(), text[span.end :].lstrip()
        if before[-1:] in "(（" and after[:1] in ")）" and len(before) >= 2 and char_script(before[-2]) != "Common":
            return "gloss"
    if len(letters) < cfg.min_span_letters:
        return "too_short"
    return None


def detect_text(text: str, lang: str, prompt: str | None = None, config: DetectConfig | None = None) -> TextDetection:
    """Leaked spans of `text`, expected to be in `lang`; pure function of its inputs."""
    cfg = config or DetectConfig()
    profile = get_profile(lang)
    cands, n_letters, _ = _candidates(text, profile)
    protected: list[tuple[int, int, str]] = []
    if cands:
        if cfg.allow_urls:
            protected += [(m.start(), m.end(), "url") for m in _URL.finditer(text)]
        if cfg.allow_code:
            protected += [(m.start(), m.end(), "code") for m in _CODE.finditer(text)]
    kept, dropped = [], []
    for s in cands:
        rule = _exclusion(s, text, prompt, cfg, protected)
        if rule is None:
            if cfg.use_lid:
                s.lid_label, s.lid_score = lid.predict(s.text)[0]
            kept.append(s)
        else:
            s.rule = rule
            dropped.append(s)
    det = TextDetection("leaked" if kept else "clean", kept, dropped)
    if kept:
        # Whole response in another language: fastText says so for the text as a whole (letters
        # of different scripts weigh differently — a kanji is a word, a Latin letter is not).
        kept_letters = sum(1 for s in kept for c in s.text if char_script(c) != "Common")
        if cfg.use_lid:
            label, score = lid.predict(text)[0]
            if label not in profile.fasttext and score >= cfg.wrong_language_threshold and kept_letters / max(n_letters, 1) > 0.3:
                det.verdict = "wrong_language"
        elif kept_letters / max(n_letters, 1) > cfg.wrong_language_threshold:
            det.verdict = "wrong_language"
    # Language Confusion Benchmark counts: lines by fastText, words by script.
    for line in text.splitlines():
        if any(char_script(c) != "Common" for c in line):
            det.n_lines += 1
            if cfg.use_lid and lid.predict(line)[0][0] not in profile.fasttext:
                det.n_lines_wrong += 1
    for w in re.findall(r"\w+", text):
        det.n_words += 1
        det.n_words_wrong += any(char_script(c) != "Common" and not char_is_native(c, profile) for c in w)
    return det


def token_span(offsets: list[tuple[int, int]], start: int, end: int) -> tuple[int | None, int | None]:
    """First and one-past-last token overlapping the char span [start, end)."""
    hit = [i for i, (a, b) in enumerate(offsets) if a < end and b > start]
    return (hit[0], hit[-1] + 1) if hit else (None, None)


def run(config: DetectConfig, generations: Path, out_dir: Path, force: bool = False) -> StageResult:
    from transformers import AutoTokenizer

    inputs = {"generations": generations, "tokenizer": config.tokenizer}

    def body(out: Path) -> Counts:
        require_columns(generations, GENERATIONS)
        rejects = Rejects("detect")
        leaks, dets = [], []
        tokenizers: dict[str, object] = {}
        rules: Counter[str] = Counter()
        n_in = mismatched = 0
        pf = pq.ParquetFile(generations)
        bar = tqdm(total=pf.metadata.num_rows, desc="detect", unit="resp")
        for batch in pf.iter_batches(batch_size=2048, columns=["prompt_id", "sample", "lang", "prompt", "token_ids", "text", "model", "role"]):
            for r in batch.to_pylist():
                row = n_in
                n_in += 1
                bar.update(1)
                if r["text"] is None:
                    rejects.add(generations, row, "text is null", "text", payload={k: r[k] for k in ("prompt_id", "sample")})
                    continue
                try:
                    det = detect_text(r["text"], r["lang"], r["prompt"], config)
                except ValueError as e:
                    rejects.add(generations, row, str(e), "lang", payload={k: r[k] for k in ("prompt_id", "sample", "lang")})
                    continue
                ids = r["token_ids"] or []
                name = config.tokenizer or r["model"]
                if ids and det.spans:
                    if name not in tokenizers:
                        tokenizers[name] = AutoTokenizer.from_pretrained(name)
                    tok = tokenizers[name]
                    offsets = token_char_offsets(tok, ids)
                    if b"".join(token_bytes(tok, ids)).decode("utf-8", errors="replace") != r["text"]:
                        mismatched += 1  # offsets may be off by the detokeniser's cleanup
                else:
                    offsets = []
                n_leak_tokens = set()
                for k, s in enumerate(det.spans):
                    ts, te = token_span(offsets, s.start, s.end)
                    if ts is not None:
                        n_leak_tokens.update(range(ts, te))
                    leaks.append({
                        "prompt_id": r["prompt_id"], "sample": r["sample"], "lang": r["lang"], "leak_idx": k,
                        "char_start": s.start, "char_end": s.end, "token_start": ts, "token_end": te, "text": s.text,
                        "script": s.script, "lid_label": s.lid_label, "lid_score": s.lid_score, "rule": s.rule,
                    })
                rules.update(s.rule for s in det.spans)
                rules.update("dropped:" + s.rule for s in det.dropped)
                dets.append({
                    "prompt_id": r["prompt_id"], "sample": r["sample"], "lang": r["lang"], "role": r["role"],
                    "verdict": det.verdict, "n_leaks": len(det.spans), "n_leak_tokens": len(n_leak_tokens),
                    "n_tokens": len(ids), "n_chars": len(r["text"]), "n_lines": det.n_lines,
                    "n_lines_wrong": det.n_lines_wrong, "n_words": det.n_words, "n_words_wrong": det.n_words_wrong,
                })
        bar.close()
        write_table(leaks, LEAKS, out / "leaks.parquet")
        n_out = write_table(dets, DETECTIONS, out / "detections.parquet")
        rejects.write(out)
        verdicts = Counter(d["verdict"] for d in dets)
        log.info("detect: %d responses: %s; %d spans; rules %s", n_out, dict(verdicts), len(leaks), dict(rules))
        if mismatched:
            log.warning("detect: %d responses whose text differs from their decoded token ids", mismatched)
        return Counts(rows_in=n_in, rows_out=n_out, rows_rejected=len(rejects),
                      extra={"spans": len(leaks), "verdicts": dict(verdicts), "rules": dict(rules), "text_mismatch": mismatched})

    return run_stage("detect", config, inputs, out_dir, body, force=force)


def detect_text_file(input_jsonl: Path, output_jsonl: Path, config: DetectConfig | None = None) -> int:
    """`leakfix detect-text`: lines {"id", "lang", "text"} → {"id", "spans": [[s, e], ...], "verdict"}."""
    n = 0
    tmp = Path(output_jsonl).with_name(Path(output_jsonl).name + ".tmp")
    with open(input_jsonl, encoding="utf-8") as fin, open(tmp, "w", encoding="utf-8") as fout:
        for lineno, line in enumerate(fin, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{input_jsonl}: line {lineno}: invalid JSON ({e.msg})") from None
            for f in ("id", "lang", "text"):
                if f not in row or (f != "id" and not isinstance(row[f], str)):
                    raise ValueError(f"{input_jsonl}: line {lineno}, field {f!r}: missing or not a string")
            try:
                det = detect_text(row["text"], row["lang"], row.get("prompt"), config)
            except ValueError as e:
                raise ValueError(f"{input_jsonl}: line {lineno}, field 'lang': {e}") from None
            fout.write(json.dumps({"id": row["id"], "spans": [[s.start, s.end] for s in det.spans], "verdict": det.verdict}, ensure_ascii=False) + "\n")
            n += 1
    tmp.replace(output_jsonl)
    return n
