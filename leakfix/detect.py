"""Stage `detect`: find wrong-language spans in responses and map them onto generated tokens.

Candidates come from compiled regexes over the language's character classes (langs.py):
maximal runs of letters in a non-native script, joined across spaces/hyphens/apostrophes
("ultimately", "Main Street"); Han characters whose form the language does not write (们 in
Japanese); letters of a sibling language (ы in Ukrainian); words of native characters that
belong to another language (但是 in Japanese); and, with fastText, whole lines in another
language that carry none of the language's marker scripts (a Chinese sentence in a Japanese
answer). Named exclusion rules then drop what is not a leak (URLs, code, units, acronyms,
identifiers, prompt terms, glosses, quoted mentions, proper nouns, single letters); dropped
spans are kept with their rule so every decision can be audited.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field
from tqdm import tqdm

from leakfix import lid
from leakfix.artifacts import Counts, Rejects, StageError, StageResult, require_columns, run_stage
from leakfix.config import StageConfig
from leakfix.langs import (
    CASED, LEAK_PRONE_WORDS, SCRIPT_WEIGHT, UNSPACED, LangProfile, all_scripts, char_is_native, char_script,
    foreign_class, foreign_han, get_profile, script_class,
)
from leakfix.schemas import DETECTIONS, GENERATIONS, LEAKS
from leakfix.tokens import decode_with_offsets, token_span

log = logging.getLogger(__name__)


class DetectConfig(StageConfig):
    use_lid: bool = Field(True, description="fastText on kept spans, on each line (line counts) and on whole responses (verdict)")
    lid_min_score: float = Field(0.5, ge=0, le=1, description="a fastText label is evidence of another language only from this score")
    line_min_letters: int = Field(4, ge=1, description="lines with fewer letters are not language-identified (headings, list markers)")
    lid_lines: bool = Field(
        True, description="a line fastText gives to another language, without the expected language's marker script "
        "(kana for Japanese), is a leak as a whole: a Chinese sentence in a Japanese answer")
    lid_line_min_score: float = Field(
        0.9, ge=0, le=1, description="fastText score such a whole-line leak needs (lid_min_score when the line also holds a "
        "foreign Han form or word)")
    lid_line_min_letters: int = Field(8, ge=1, description="letters a line needs before it can be a whole-line leak")
    min_span_chars: int = Field(
        2, ge=1, description="spans of alphabetic scripts with fewer letters are dropped (x, A社); one Han/kana/Hangul "
        "character still counts")
    wrong_language_threshold: float = Field(
        0.5, gt=0, le=1, description="share of the response's letters inside leaks (ideographs and Hangul weigh 2) above "
        "which the verdict is wrong_language; with use_lid, fastText on the whole response must agree")
    acronym_max_letters: int = Field(5, ge=1, description="all-caps words up to this length are acronyms (API, GPU, NASA)")
    allow_urls: bool = Field(True, description="URLs and e-mail addresses are not leaks")
    allow_code: bool = Field(True, description="`inline code` and ``` fenced blocks are not leaks")
    allow_math: bool = Field(True, description="$…$, $$…$$, \\(…\\), \\[…\\] math is not a leak")
    allow_units: bool = Field(True, description="a short unit right after a number (5 km, 3GB, 25°C) is not a leak")
    allow_acronyms: bool = Field(True, description="all-caps acronyms (API, GPUs) are not leaks")
    allow_identifiers: bool = Field(
        True, description="CamelCase, dotted, snake_case and alphanumeric names (iPhone, file.py, GPT-4o, H100) are not leaks")
    allow_prompt_terms: bool = Field(True, description="terms the prompt itself used are not leaks")
    allow_glosses: bool = Field(True, description="a parenthetical right after a native term, 東京（Tokyo）, is not a leak")
    allow_quotes: bool = Field(True, description="a term quoted as a mention, 「Hello」, is not a leak")
    allow_proper_nouns: bool = Field(
        True, description="capitalised names in a cased foreign script (Google, Main Street) are not leaks, unless they "
        "start with a common connective (However)")
    tokenizer: str | None = Field(None, description="tokenizer (hub id or folder) for token spans; default: each row's `model`")
    trust_remote_code: bool = Field(False, description="passed to AutoTokenizer")
    batch_size: int = Field(1024, ge=1, description="rows per Parquet batch (memory stays flat)")


_DEFAULT = DetectConfig()


@dataclass
class Span:
    start: int
    end: int  # exclusive
    text: str
    script: str
    rule: str  # what found it (foreign_script, han_form, foreign_letter, foreign_word, lid_line) or, if dropped, why
    lid_label: str | None = None
    lid_score: float | None = None

    @property
    def char_start(self) -> int:
        return self.start

    @property
    def char_end(self) -> int:
        return self.end


@dataclass
class TextDetection:
    verdict: str  # clean | leaked | wrong_language
    spans: list[Span]  # the leaks
    dropped: list[Span] = field(default_factory=list)  # candidates an exclusion rule dropped (rule = its name)
    foreign_share: float = 0.0  # weighted share of letters inside leaks
    lid_label: str | None = None  # whole response, when it was needed for the verdict
    lid_score: float | None = None
    n_lines: int = 0  # lines with at least line_min_letters letters
    n_lines_wrong: int | None = None  # of those, fastText says another language (None without LID)
    n_words: int = 0
    n_words_wrong: int = 0  # words inside leaks


# ---------------------------------------------------------------------------------------------
# Patterns, compiled once per language.
_JOIN = r"[ \t\u00a0\u2009\u202f\-\u2010\u2011'\u2019\u0300-\u036f\u200c\u200d]"
_URL = re.compile(r"(?:https?|ftp)://[!-~]+|www\.[A-Za-z0-9-]+\.[!-~]+|[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_CODE = re.compile(r"```.*?(?:```|\Z)|`[^`\n]+`", re.S)
_MATH = re.compile(r"\$\$.+?\$\$|\$[^$\n]+\$|\\\(.+?\\\)|\\\[.+?\\\]", re.S)
_PAREN = re.compile(r"[(（]([^()（）\n]{1,100})[)）]")
_QUOTES = {"「": "」", "『": "』", "“": "”", "‘": "’", '"': '"', "'": "'", "«": "»", "„": "“", "‹": "›", "《": "》"}
_LETTERS = re.compile(r"[^\W\d_]+")  # words for the casing rules (Python's letters)
_CONNECTORS = frozenset("of the and de la le du des von van der den del di da y e et und & for".split())
_PROTECTORS: list[tuple[str, str, re.Pattern[str], Callable[[str], bool]]] = [
    ("url", "allow_urls", _URL, lambda t: "://" in t or "www." in t or "@" in t),
    ("code", "allow_code", _CODE, lambda t: "`" in t),
    ("math", "allow_math", _MATH, lambda t: "$" in t or "\\(" in t or "\\[" in t),
]
_ALL_LETTERS = script_class(*all_scripts())
_NOT_LETTER = re.compile(f"[^{_ALL_LETTERS}]+")
_LETTER_SPAN = re.compile(f"[{_ALL_LETTERS}].*[{_ALL_LETTERS}]|[{_ALL_LETTERS}]")  # first to last letter
_AFTER_NUMBER = re.compile(r"\d[ \u00a0]?[°%/]?$")


@dataclass(frozen=True)
class _Patterns:
    profile: LangProfile
    runs: re.Pattern[str]  # runs of foreign-script letters
    foreign: re.Pattern[str]  # one foreign-script letter
    han: re.Pattern[str] | None  # Han characters of a foreign form
    letters: re.Pattern[str] | None  # sibling-language letters
    words: re.Pattern[str] | None  # foreign words of native characters
    word: re.Pattern[str]  # one "word": a run of one native script, or of foreign letters
    marker: re.Pattern[str] | None  # a letter proving the language (kana for Japanese)
    heavy: dict[str, re.Pattern[str]]  # letters whose weight is not 1


@lru_cache(maxsize=None)
def _patterns(lang: str) -> _Patterns:
    p = get_profile(lang)
    F = foreign_class(lang)
    fh = foreign_han(lang)
    han = "".join(f"\\u{a:04x}-\\u{b:04x}" for a, b in fh)
    words = "|".join(re.escape(w) for w in p.foreign_words)
    native = [s for s in sorted(p.scripts)]
    markers = [s for s in native if s in ("Hiragana", "Katakana")] if p.han_forms == "ja" else []
    return _Patterns(
        profile=p,
        runs=re.compile(f"[{F}]+(?:(?:{_JOIN}+|[.&])[{F}]+)*"),
        foreign=re.compile(f"[{F}]"),
        han=re.compile(f"[{han}]+") if han else None,
        letters=re.compile(f"[{re.escape(p.foreign_letters)}]") if p.foreign_letters else None,
        words=re.compile(words) if words else None,
        word=re.compile("|".join(f"[{script_class(s)}]+" for s in native) + f"|[{F}]+"),
        marker=re.compile(f"[{script_class(*markers)}]") if markers else None,
        heavy={s: re.compile(f"[{script_class(s)}]") for s in SCRIPT_WEIGHT},
    )


# ---------------------------------------------------------------------------------------------
def _split_by_script(text: str, start: int, end: int, rule: str) -> list[Span]:
    """A run of foreign letters may change script ("Hello 한국"): one span per script."""
    out: list[Span] = []
    cur, a, last = None, start, start
    for i in range(start, end):
        s = char_script(text[i])
        if s == "Common":
            continue
        if cur is not None and s != cur:
            out.append(Span(a, last, text[a:last], cur, rule))
            a = i
        if cur is None or s != cur:
            cur = s
        last = i + 1
    out.append(Span(a, last, text[a:last], cur or "Common", rule))
    return out


def _candidates(text: str, P: _Patterns) -> list[Span]:
    cands: list[Span] = []
    for m in P.runs.finditer(text):
        a, b = m.span()
        s0 = char_script(text[a])
        if not _other_than(s0).search(m.group()):
            cands.append(Span(a, b, m.group(), s0, "foreign_script"))
        else:
            cands += _split_by_script(text, a, b, "foreign_script")
    if P.words is not None:
        cands += [Span(m.start(), m.end(), m.group(), char_script(m.group()[0]), "foreign_word") for m in P.words.finditer(text)]
    if P.han is not None:
        cands += [Span(m.start(), m.end(), m.group(), "Han", "han_form") for m in P.han.finditer(text)]
    if P.letters is not None:
        for m in P.letters.finditer(text):
            # Extend to the whole word: the Russian word, not just its ы.
            a, b, s = m.start(), m.end(), char_script(m.group())
            while a > 0 and char_script(text[a - 1]) == s:
                a -= 1
            while b < len(text) and char_script(text[b]) == s:
                b += 1
            cands.append(Span(a, b, text[a:b], s, "foreign_letter"))
    if len(cands) < 2:
        return cands
    # Merge overlaps (最终 found as a word and as 终) and touching spans of one script (最终经常).
    cands.sort(key=lambda s: (s.start, -s.end))
    out = [cands[0]]
    for s in cands[1:]:
        o = out[-1]
        if s.start < o.end or (s.start == o.end and s.script == o.script and s.script in UNSPACED):
            if s.end > o.end:
                o.end, o.text = s.end, text[o.start : s.end]
        else:
            out.append(s)
    return out


def _n_letters(s: str) -> int:
    return len(_NOT_LETTER.sub("", s))


@lru_cache(maxsize=None)
def _other_than(script: str) -> re.Pattern[str]:
    """Letters of any script but `script`."""
    return re.compile(f"[{script_class(*[s for s in all_scripts() if s != script])}]")


class _Context:
    """What the exclusion rules look at, computed lazily once per text."""

    def __init__(self, text: str, prompt: str | None, P: _Patterns, cfg: DetectConfig) -> None:
        self.text, self.prompt, self.P, self.cfg = text, prompt, P, cfg
        self.protected = [
            (m.start(), m.end(), name)
            for name, flag, rx, trigger in _PROTECTORS
            if getattr(cfg, flag) and trigger(text)
            for m in rx.finditer(text)
        ]
        self._glosses: list[tuple[int, int]] | None = None
        self._prompt_words: set[str] | None = None

    def glosses(self) -> list[tuple[int, int]]:
        if self._glosses is None:
            t, p = self.text, self.P.profile
            self._glosses = []
            for m in _PAREN.finditer(t):
                before = t[: m.start()].rstrip()
                if before and char_script(before[-1]) != "Common" and char_is_native(before[-1], p):
                    self._glosses.append(m.span(1))
        return self._glosses

    def prompt_words(self) -> set[str]:
        if self._prompt_words is None:
            # One word per script run: "Pythonについて" holds the word "python".
            self._prompt_words = {w.casefold() for w in self.P.word.findall(self.prompt or "")}
        return self._prompt_words


def _exclusion(s: Span, ctx: _Context) -> str | None:
    """Name of the first rule that says the candidate is not a leak, or None."""
    cfg, text = ctx.cfg, ctx.text
    for a, b, name in ctx.protected:
        if a <= s.start and s.end <= b:
            return name
    words = _LETTERS.findall(s.text)
    n = _n_letters(s.text)
    cased = s.script in CASED
    before = text[max(0, s.start - 3) : s.start]
    after = text[s.end : s.end + 2]
    if cfg.allow_units and cased and n <= 4 and _AFTER_NUMBER.search(before):
        return "unit"
    if cfg.allow_acronyms and cased and words and all(
        len(w) <= cfg.acronym_max_letters and (w.isupper() or (w[-1] == "s" and w[:-1].isupper() and len(w) > 2)) for w in words
    ):
        return "acronym"
    if cfg.allow_identifiers and cased and (
        any(a.islower() and b.isupper() for a, b in zip(s.text, s.text[1:]))  # iPhone, JavaScript
        or "." in s.text or "&" in s.text  # file.py, e.g
        or (before[-1:] and (before[-1].isdigit() or before[-1] in "_$#@\\/."))  # snake_case, $var, #tag, 3D
        or (after[:1] and (after[0].isdigit() or after[0] in "_(") or after[:1] == "." and after[1:2].isalnum())
    ):
        return "identifier"
    if cfg.allow_prompt_terms and ctx.prompt:
        pw = ctx.prompt_words()
        if s.script in UNSPACED:
            if s.text in ctx.prompt:
                return "prompt_term"
        elif words and all(w.casefold() in pw for w in ctx.P.word.findall(s.text)):
            return "prompt_term"
    if cfg.allow_glosses and any(a <= s.start and s.end <= b for a, b in ctx.glosses()):
        return "gloss"
    if cfg.allow_quotes:
        lq, rq = text[: s.start].rstrip()[-1:], text[s.end :].lstrip()[:1]
        if lq in _QUOTES and rq == _QUOTES[lq]:
            return "quote"
    if cfg.allow_proper_nouns and cased and words and words[0].casefold() not in LEAK_PRONE_WORDS:
        # Capitalised (Google) or all-caps beyond acronym length (NVIDIA); lower-case links (Bank of Japan).
        cap = lambda w: w[0].isupper() and (not w.isupper() or len(w) > cfg.acronym_max_letters)
        if cap(words[0]) and cap(words[-1]) and all(cap(w) or w.casefold() in _CONNECTORS for w in words):
            return "proper_noun"
    if n < cfg.min_span_chars and s.script not in UNSPACED and s.script != "Hangul":
        return "too_short"
    return None


def _lid_lines(text: str, lid_text: str, P: _Patterns, cfg: DetectConfig, det: TextDetection, spans: list[Span]) -> None:
    """Line counts for the Language Confusion Benchmark, and whole-line leaks (see lid_lines).
    `lid_text` is `text` with code and URLs blanked out (same length)."""
    pos = 0
    for line in lid_text.split("\n"):
        start, pos = pos, pos + len(line) + 1
        n = _n_letters(line)
        if n < cfg.line_min_letters:
            continue
        det.n_lines += 1
        if not cfg.use_lid:
            continue
        label, score = lid.top(line)
        if label in P.profile.fasttext or score < cfg.lid_min_score:
            continue
        det.n_lines_wrong += 1
        # Only lines of native-script letters: foreign-script ones are the candidates' business,
        # with their exclusion rules (an English code line is not a Chinese sentence).
        # A Chinese-only form or word in the line is evidence enough for a plain LID majority.
        chinese = (P.han is not None and P.han.search(line)) or (P.words is not None and P.words.search(line))
        if (
            cfg.lid_lines and P.marker is not None and n >= cfg.lid_line_min_letters
            and score >= (cfg.lid_min_score if chinese else cfg.lid_line_min_score) and not P.marker.search(line)
            and 2 * len(P.foreign.findall(line)) < n
        ):
            # Trim to the letters: the leak is the sentence, not its list marker or final 。
            m = _LETTER_SPAN.search(line)
            if m:
                a, b = start + m.start(), start + m.end()
                spans.append(Span(a, b, text[a:b], char_script(text[a]), "lid_line", label, score))


def detect_text(text: str, lang: str, prompt: str | None = None, config: DetectConfig | None = None) -> TextDetection:
    """Leaked spans of `text`, whose expected language is `lang` (a pure function of its inputs).
    Raises ValueError for an unknown language code."""
    cfg = config or _DEFAULT
    P = _patterns(lang)
    det = TextDetection("clean", [], n_lines_wrong=0 if cfg.use_lid else None)
    ctx = _Context(text, prompt, P, cfg)
    # LID sees the text without code and URLs (an English code block is not an English line).
    lid_text = text
    for a, b, _ in sorted(ctx.protected, reverse=True):
        lid_text = lid_text[:a] + " " * (b - a) + lid_text[b:]
    line_spans: list[Span] = []
    _lid_lines(text, lid_text, P, cfg, det, line_spans)
    cands = _candidates(text, P)
    for s in cands:
        if any(l.start <= s.start and s.end <= l.end for l in line_spans):
            continue  # inside a whole-line leak
        rule = _exclusion(s, ctx)
        if rule is None:
            det.spans.append(s)
        else:
            s.rule = rule
            det.dropped.append(s)
    if line_spans:
        det.spans = sorted(det.spans + line_spans, key=lambda s: s.start)
    det.n_words = len(P.word.findall(text))
    if not det.spans:
        return det
    for s in det.spans:
        if cfg.use_lid and s.lid_label is None:
            s.lid_label, s.lid_score = lid.top(s.text)
        det.n_words_wrong += len(P.word.findall(s.text))
    weight = lambda t: _n_letters(t) + sum((w - 1) * len(P.heavy[k].findall(t)) for k, w in SCRIPT_WEIGHT.items())
    total = weight(text)
    det.foreign_share = sum(weight(s.text) for s in det.spans) / total if total else 0.0
    det.verdict = "leaked"
    if det.foreign_share > cfg.wrong_language_threshold:
        if cfg.use_lid:
            det.lid_label, det.lid_score = lid.top(lid_text)
            if det.lid_label in P.profile.fasttext or det.lid_score < cfg.lid_min_score:
                return det
        det.verdict = "wrong_language"
    return det


# ---------------------------------------------------------------------------------------------
def _offset_mapper(text: str, decoded: str) -> Callable[[int, bool], int]:
    """Map a char offset in `text` to `decoded` when the backend's text differs from the decode
    of its token ids (stripped spaces, a dropped partial character)."""
    ops = difflib.SequenceMatcher(None, text, decoded, autojunk=False).get_opcodes()

    def f(i: int, is_end: bool) -> int:
        for tag, i1, i2, j1, j2 in ops:
            if i1 <= i < i2 or (is_end and i == i2):
                return j1 + (i - i1) if tag == "equal" else (j2 if is_end else j1)
        return len(decoded)

    return f


class _Writer:
    """Parquet rows streamed batch by batch into a temporary file, renamed into place on close."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path, self.schema, self.n = path, schema, 0
        self.tmp = path.with_name(f".{path.name}.tmp")
        self.w = pq.ParquetWriter(self.tmp, schema, compression="zstd")

    def write(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.w.write_table(pa.Table.from_pylist(rows, schema=self.schema))
            self.n += len(rows)

    def close(self) -> int:
        self.w.close()
        os.replace(self.tmp, self.path)
        return self.n


_COLUMNS = ["prompt_id", "sample", "lang", "prompt", "token_ids", "text", "model", "role"]


def _problem(r: dict[str, Any]) -> tuple[str, str] | None:
    """(field, reason) when a generations row cannot be processed."""
    for f in ("prompt_id", "sample", "lang", "text"):
        if r[f] is None:
            return f, f"{f} is null"
    try:
        get_profile(r["lang"])
    except ValueError as e:
        return "lang", str(e)
    return None


def _token_spans(det: TextDetection, text: str, ids: list[int], tok: Any) -> tuple[list[tuple[int | None, int | None]], bool]:
    """Token span of each leak, and whether `text` differed from the decode of `ids` (then char
    offsets are mapped through an alignment of the two)."""
    decoded, offsets = decode_with_offsets(tok, ids)
    remap = _offset_mapper(text, decoded) if decoded != text else None
    spans = [token_span(offsets, remap(s.start, False), remap(s.end, True)) if remap else token_span(offsets, s.start, s.end)
             for s in det.spans]
    return spans, remap is not None


def run(config: DetectConfig, generations: Path, out_dir: Path, force: bool = False) -> StageResult:
    """generations.parquet -> leaks.parquet (one row per leak), detections.parquet (one row per
    response), rejects.parquet (rows with a null field or an unknown lang)."""
    generations = Path(generations)
    inputs = {"generations": generations, "tokenizer": config.tokenizer}

    cache: dict[str, Any] = {}

    def tokenizer(name: str) -> Any:
        """Loaded on the first leak, so an all-clean file needs no tokenizer."""
        if name not in cache:
            from transformers import AutoTokenizer

            try:
                cache[name] = AutoTokenizer.from_pretrained(name, trust_remote_code=config.trust_remote_code)
            except Exception as e:  # noqa: BLE001 - whatever the loader raises, the fix is the same
                raise StageError(f"{generations}: cannot load tokenizer {name!r} (set detect.tokenizer): {e}") from e
        return cache[name]

    def body(out: Path) -> Counts:
        require_columns(generations, pa.schema([GENERATIONS.field(c) for c in _COLUMNS]))
        rejects = Rejects("detect")
        rules, dropped, verdicts = Counter[str](), Counter[str](), Counter[str]()
        n_in = n_chars = mismatched = 0
        leaks_w, dets_w = _Writer(out / "leaks.parquet", LEAKS), _Writer(out / "detections.parquet", DETECTIONS)
        pf = pq.ParquetFile(generations)
        with tqdm(total=pf.metadata.num_rows, desc="detect", unit="resp", disable=None) as bar:
            for batch in pf.iter_batches(batch_size=config.batch_size, columns=_COLUMNS):
                # token ids become Python lists only for responses with leaks
                cols = {c: batch.column(c).to_pylist() for c in _COLUMNS if c != "token_ids"}
                ids_col = batch.column("token_ids")
                n_tok = pc.fill_null(pc.list_value_length(ids_col), 0).to_pylist()
                leaks, dets = [], []
                for i in range(batch.num_rows):
                    r = {c: v[i] for c, v in cols.items()}
                    key = {"prompt_id": r["prompt_id"], "sample": r["sample"], "lang": r["lang"]}
                    n_in += 1
                    if (problem := _problem(r)) is not None:
                        rejects.add(generations, n_in - 1, problem[1], problem[0], payload=key)
                        continue
                    text = r["text"]
                    n_chars += len(text)
                    det = detect_text(text, r["lang"], r["prompt"], config)
                    tspans: list[tuple[int | None, int | None]] = [(None, None)] * len(det.spans)
                    if det.spans and n_tok[i]:
                        tspans, differs = _token_spans(det, text, ids_col[i].as_py(), tokenizer(config.tokenizer or r["model"]))
                        mismatched += differs
                    for k, (s, (ts, te)) in enumerate(zip(det.spans, tspans)):
                        leaks.append({**key, "leak_idx": k, "char_start": s.start, "char_end": s.end, "token_start": ts,
                                      "token_end": te, "text": s.text, "script": s.script, "lid_label": s.lid_label,
                                      "lid_score": s.lid_score, "rule": s.rule})
                    n_leak_tokens = len({t for ts, te in tspans if ts is not None for t in range(ts, te)})
                    dets.append({**key, "role": r["role"], "verdict": det.verdict, "n_leaks": len(det.spans),
                                 "n_leak_tokens": n_leak_tokens, "n_tokens": n_tok[i], "n_chars": len(text),
                                 "n_lines": det.n_lines, "n_lines_wrong": det.n_lines_wrong, "n_words": det.n_words,
                                 "n_words_wrong": det.n_words_wrong})
                    rules.update(s.rule for s in det.spans)
                    dropped.update(s.rule for s in det.dropped)
                    verdicts[det.verdict] += 1
                leaks_w.write(leaks)
                dets_w.write(dets)
                bar.update(batch.num_rows)
        n_leaks, n_out = leaks_w.close(), dets_w.close()
        rejects.write(out)
        log.info("detect: %d responses %s; %d leaks by rule %s; dropped by rule %s; %d rejected",
                 n_out, dict(verdicts), n_leaks, dict(rules), dict(dropped), len(rejects))
        if mismatched:
            log.warning("detect: %d leaked responses whose text differs from the decode of their token ids; "
                        "their token spans were mapped through an alignment", mismatched)
        return Counts(
            rows_in=n_in, rows_out=n_out, rows_rejected=len(rejects), rows_accounted=n_out,
            extra={"leaks": n_leaks, "verdicts": dict(verdicts), "rules": dict(rules), "dropped": dict(dropped),
                   "text_mismatch": mismatched, "chars": n_chars},
        )

    return run_stage("detect", config, inputs, out_dir, body, force=force)


def detect_text_file(input_jsonl: Path, output_jsonl: Path, config: DetectConfig | None = None) -> int:
    """`leakfix detect-text IN.jsonl --output OUT.jsonl`: input lines {"id", "lang", "text"} (and
    optionally "prompt"), output lines {"id", "spans": [[start, end], ...], "verdict"}. A bad line
    raises ValueError naming the file, line number and field. Returns the lines written."""
    input_jsonl, output_jsonl = Path(input_jsonl), Path(output_jsonl)
    tmp = output_jsonl.with_name(f".{output_jsonl.name}.tmp")
    n = 0
    with open(input_jsonl, encoding="utf-8") as fin, open(tmp, "w", encoding="utf-8") as fout:
        for lineno, line in enumerate(fin, start=1):
            if not line.strip():
                continue
            where = f"{input_jsonl}: line {lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{where}: invalid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{where}: expected an object with id, lang, text")
            for f in ("id", "lang", "text"):
                if row.get(f) is None or (f != "id" and not isinstance(row[f], str)):
                    raise ValueError(f"{where}, field {f!r}: missing or not a string")
            if row.get("prompt") is not None and not isinstance(row["prompt"], str):
                raise ValueError(f"{where}, field 'prompt': not a string")
            try:
                det = detect_text(row["text"], row["lang"], row.get("prompt"), config)
            except ValueError as e:
                raise ValueError(f"{where}, field 'lang': {e}") from None
            fout.write(json.dumps({"id": row["id"], "spans": [[s.start, s.end] for s in det.spans], "verdict": det.verdict},
                                  ensure_ascii=False) + "\n")
            n += 1
    os.replace(tmp, output_jsonl)
    return n
