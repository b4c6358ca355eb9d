"""The paired-seed statistics in bisector.decide, checked against SciPy's own t-test."""

from __future__ import annotations

import numpy as np
from scipy import stats

from bisector.decide import p_worse_by
from bisector.model import Direction


def test_p_worse_by_is_the_t_posterior_of_the_paired_differences() -> None:
    rng = np.random.default_rng(3)
    before = {k: float(v) for k, v in enumerate(rng.normal(10.0, 1.0, 9))}
    after = {k: v - 1.2 + float(rng.normal(0, 0.5)) for k, v in before.items()}
    worse = np.array([before[k] - after[k] for k in before])
    for margin in (0.0, 0.75, 1.2, 2.0):
        expected = 1 - stats.ttest_1samp(worse, margin, alternative="greater").pvalue
        assert abs(p_worse_by(before, after, Direction.HIGHER, margin) - expected) < 1e-9
    # lower is better: the same runs read the other way round
    assert p_worse_by(after, before, Direction.LOWER, 0.75) == p_worse_by(
        before, after, Direction.HIGHER, 0.75)
    # only the seeds run on both sides count
    extra = {**after, 100: -50.0}
    assert p_worse_by(before, extra, Direction.HIGHER, 0.75) == p_worse_by(
        before, after, Direction.HIGHER, 0.75)


def test_p_worse_by_is_exact_for_a_seed_deterministic_probe_and_zero_without_pairs() -> None:
    before, after = {0: 1.0, 1: 2.0, 2: 1.5}, {0: 0.5, 1: 1.5, 2: 1.0}  # 0.5 worse at every seed
    assert p_worse_by(before, after, Direction.HIGHER, 0.4) == 1.0
    assert p_worse_by(before, after, Direction.HIGHER, 0.6) == 0.0
    assert p_worse_by(before, {5: 0.0}, Direction.HIGHER, 0.0) == 0.0
