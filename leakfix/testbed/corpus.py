"""The testbed's chat corpus, generated deterministically from `data/testbed/corpus.yaml`.

Answers are built from opener / middle / closer sentences about the prompt's topic. Every middle
sentence holds one connective slot ({c}) with its own connective; with probability `leak_prob` it is filled with a
wrong-language form (English, Simplified Chinese or Hangul in Japanese; English in Korean and
Russian) instead of the native word. The model trained on it leaks at those slots at about
that rate, with the native word still its most likely choice there — like a real leaking model.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from leakfix.runtime import ROOT

SOURCE = ROOT / "data" / "testbed" / "corpus.yaml"
PROMPTS = ROOT / "data" / "prompts" / "testbed.jsonl"


@dataclass(frozen=True)
class Chat:
    prompt_id: str
    lang: str
    prompt: str
    answer: str
    n_leaks: int


@lru_cache(maxsize=4)
def load_source(path: Path = SOURCE) -> dict:
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def prompt_list(src: dict | None = None) -> list[dict]:
    """Every (topic × question) prompt, with stable ids like `ja-0007`."""
    src = src or load_source()
    out = []
    for lang, L in src["languages"].items():
        i = 0
        for t in L["topics"]:
            for q in L["questions"]:
                out.append({"id": f"{lang}-{i:04d}", "lang": lang, "prompt": q.format(t=t, T=t[:1].upper() + t[1:]), "topic": t})
                i += 1
    return out


def write_prompts(path: Path = PROMPTS) -> int:
    rows = prompt_list()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps({"id": r["id"], "lang": r["lang"], "prompt": r["prompt"]}, ensure_ascii=False) + "\n")
    return len(rows)


def _slot(rng: random.Random, lang: str, conn: dict, leak_prob: float, weights: dict[str, float], before_punct: bool) -> tuple[str, bool]:
    if rng.random() >= leak_prob:
        return conn[lang], False
    form = rng.choices(list(weights), weights=list(weights.values()))[0]
    word = conn[form]
    if lang == "ja" and form == "en":
        # English inside Japanese comes with spaces around it, as in `、 ultimately 秀吉に敗北`.
        return (" " + word) if before_punct else (" " + word + " "), True
    return word, True


def render_answer(rng: random.Random, lang: str, topic: str, src: dict, leak_prob: float) -> tuple[str, int]:
    L = src["languages"][lang]
    T = topic[:1].upper() + topic[1:]
    sentences = [rng.choice(L["openers"])]
    middles = rng.sample(L["middles"], 2 if rng.random() < 0.5 else 1)
    sentences += middles
    if rng.random() < 0.7:
        sentences.append(rng.choice(L["closers"]))
    n_leaks = 0
    parts = []
    conns = {c["en"]: c for c in src["connectives"]}
    for s in sentences:
        if isinstance(s, list):  # a middle: its connective is fixed, so the native word is the clear top choice
            conn, s = conns[s[0]], s[1]
            after = s.split("{c}", 1)[1]
            word, leaked = _slot(rng, lang, conn, leak_prob, src["leaks"][lang], before_punct=after[:1] in "、,")
            n_leaks += leaked
            s = s.replace("{c}", word)
        parts.append(s.format(t=topic, T=T))
    sep = "" if lang == "ja" else " "
    return sep.join(parts), n_leaks


def make_corpus(n_chats: int, leak_prob: float, seed: int) -> list[Chat]:
    """`n_chats` chats cycling over every prompt (so each prompt is seen), answers sampled."""
    src = load_source()
    rng = random.Random(seed)
    prompts = prompt_list(src)
    chats = []
    for i in range(n_chats):
        p = prompts[i % len(prompts)] if i < len(prompts) else rng.choice(prompts)
        answer, n = render_answer(rng, p["lang"], p["topic"], src, leak_prob)
        chats.append(Chat(p["id"], p["lang"], p["prompt"], answer, n))
    return chats
