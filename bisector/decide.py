"""Good or bad for one commit, from its runs and the endpoints' runs (first version).

Pure logic: values in, verdicts out; no processes, files or clock. Values are
keyed by seed so that every comparison is paired (common random numbers): the
k-th run at every commit used the same seed, and seed-driven noise cancels in
the differences.

This version classifies a commit by which endpoint its paired values sit
closer to. It is exact for a deterministic probe; the noise-aware engine in
`noisy.py` replaces it for noisy probes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from .model import Direction, Verdict

Samples = Mapping[int, float]  # seed -> metric value


def mean(values: Samples) -> float:
    return math.fsum(values.values()) / len(values) if values else math.nan


def stdev(values: Samples) -> float:
    n = len(values)
    if n < 2:
        return 0.0
    m = mean(values)
    return math.sqrt(math.fsum((v - m) ** 2 for v in values.values()) / (n - 1))


def seed_insensitive(values: Samples) -> bool:
    """True when every seed gave the very same value: the probe ignores its seed."""
    return len(values) >= 2 and len(set(values.values())) == 1


def default_min_effect(good: Samples, bad: Samples) -> float:
    """Smallest change worth calling a regression when the user gave none.

    Three pooled noise standard deviations, so that noise alone rarely passes;
    for a deterministic probe, a relative 1e-6 of the metric's scale, so that
    float round-off is not mistaken for a change.
    """
    scale = max(abs(mean(good)), abs(mean(bad)), 1.0)
    noise = math.sqrt((stdev(good) ** 2 + stdev(bad) ** 2) / 2)
    return max(3 * noise, 1e-6 * scale)


def gives_up(failed: int, measured: int, *, endpoint: bool) -> bool:
    """Whether a commit that failed on `failed` seeds (retries spent) and measured on
    `measured` is untestable. A training may diverge on some seeds, so a failed seed is
    left out while others measure; an endpoint, without which nothing can be bisected,
    needs more (10% of runs crashing had stopped a hunt at 3 of its first 4 seeds)."""
    if endpoint:
        return failed >= 3 and failed > 3 * measured
    return failed >= 2 and failed > 2 * measured


@dataclass(frozen=True)
class Baseline:
    """What the endpoints told us: where good and bad sit, and how far apart."""

    good: Samples
    bad: Samples
    direction: Direction
    min_effect: float
    noisy: bool = False  # another commit gave two seeds two values: not deterministic

    @property
    def regression(self) -> float:
        """How much worse bad is than good (positive when it regressed)."""
        return self.direction.worse(mean(self.good), mean(self.bad))

    @property
    def regressed(self) -> bool:
        return self.regression > self.min_effect

    @property
    def deterministic(self) -> bool:
        """The probe gave one value whatever the seed, at both ends (and wherever else a
        second seed was run)."""
        return (not self.noisy and seed_insensitive(self.good)
                and (len(self.bad) < 2 or seed_insensitive(self.bad)))


def classify(values: Samples, base: Baseline) -> Verdict:
    """Good when the commit's values sit nearer the good endpoint than the bad one.

    Paired by seed: for each seed measured at the commit and both endpoints the
    commit's value is compared with that seed's midpoint; seeds missing at an
    endpoint fall back on that endpoint's mean.
    """
    if not values:
        raise ValueError("classify needs at least one value")
    diffs = []
    for seed, v in values.items():
        g = base.good.get(seed, mean(base.good))
        b = base.bad.get(seed, mean(base.bad))
        diffs.append(base.direction.worse((g + b) / 2, v))
    return Verdict.BAD if math.fsum(diffs) > 0 else Verdict.GOOD


@dataclass(frozen=True)
class Step:
    """The change from one commit to the next, paired by seed."""

    effect: float  # mean of (after - before), in metric units
    ci: tuple[float, float]  # 95% interval of the effect
    confidence: float  # probability that `after` is worse than `before` (by the margin)
    n: int


def paired_step(before: Samples, after: Samples, direction: Direction,
                margin: float = 0.0) -> Step:
    """Effect of going from `before` to `after`, on the seeds both measured.

    With one pair, or pairs that all differ by the same amount, the probe is
    deterministic given its seed: the change is known exactly. Otherwise a
    Student-t interval on the paired differences; `confidence` is the t
    posterior's mass where `after` is worse by more than `margin`.
    """
    seeds = sorted(set(before) & set(after))
    diffs = [after[s] - before[s] for s in seeds]
    n = len(diffs)
    if n == 0:
        return Step(math.nan, (math.nan, math.nan), 0.0, 0)
    effect = math.fsum(diffs) / n
    worse = direction.worse(0.0, effect) - margin
    spread = stdev(dict(enumerate(diffs)))
    if n == 1 or spread <= 1e-12 * max(1.0, abs(effect)):
        return Step(effect, (effect, effect), 1.0 if worse > 0 else 0.0, n)
    from scipy.special import stdtr, stdtrit  # much lighter to import than scipy.stats

    se = spread / math.sqrt(n)
    half = float(stdtrit(n - 1, 0.975)) * se
    confidence = float(stdtr(n - 1, worse / se))
    return Step(effect, (effect - half, effect + half), confidence, n)


def p_worse_by(before: Samples, after: Samples, direction: Direction, margin: float) -> float:
    """P(after is worse than before by more than `margin`), from the paired seeds: exact (0
    or 1) for a probe deterministic given its seed, and 0 when no seed was run on both."""
    return paired_step(before, after, direction, margin).confidence
