import numpy as np

from leakfix.stats import mcnemar_exact, ratio_ci


def test_ratio_ci_covers_the_value_and_shrinks_with_n():
    rng = np.random.default_rng(0)
    small = rng.random(50) < 0.2
    big = rng.random(5000) < 0.2
    v, lo, hi = ratio_ci(small.astype(float), np.ones(50))
    V, LO, HI = ratio_ci(big.astype(float), np.ones(5000))
    assert lo <= v <= hi and LO <= V <= HI
    assert (HI - LO) < (hi - lo) / 3
    assert abs(V - 0.2) < 0.02


def test_ratio_ci_degenerate():
    assert np.isnan(ratio_ci(np.array([]), np.array([]))[0])
    assert ratio_ci(np.zeros(10), np.ones(10)) == (0.0, 0.0, 0.0)


def test_mcnemar_exact():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(5, 5) == 1.0
    # 10 discordant pairs all one way: 2 * 0.5**10
    assert abs(mcnemar_exact(10, 0) - 2 * 0.5**10) < 1e-12
    assert mcnemar_exact(20, 2) < 0.001 < mcnemar_exact(6, 3)
