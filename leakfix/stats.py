"""Small pure statistics for evaluate: cluster bootstrap over prompts and McNemar's exact test."""

from __future__ import annotations

import math

import numpy as np


def ratio_ci(num: np.ndarray, den: np.ndarray, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> tuple[float, float, float]:
    """Ratio sum(num)/sum(den) over clusters (prompts) with a percentile bootstrap CI.

    Resampling whole prompts keeps the samples of one prompt together, so a prompt that leaks in
    all its samples does not look like independent evidence.
    """
    num, den = np.asarray(num, float), np.asarray(den, float)
    if len(num) == 0 or den.sum() == 0:
        return float("nan"), float("nan"), float("nan")
    value = num.sum() / den.sum()
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(num), size=(n_boot, len(num)))
    d = den[idx].sum(1)
    boots = np.where(d > 0, num[idx].sum(1) / np.where(d > 0, d, 1), np.nan)
    lo, hi = np.nanquantile(boots, [alpha / 2, 1 - alpha / 2])
    return float(value), float(lo), float(hi)


def mcnemar_exact(b_only: int, t_only: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pair counts (base-only, tuned-only)."""
    n = b_only + t_only
    if n == 0:
        return 1.0
    k = min(b_only, t_only)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)
