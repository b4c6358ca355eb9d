"""Attribution arithmetic: how much of a metric change each config key, and the code, explain.

Pure logic: configs and per-seed metric values in, numbers out; no processes,
files or clock. `attribution_cells.py` measures the cells this module asks for
and hands the values back; the words are in `attribution_words.py`, ddmin in
`ddmin.py` and the run budget in `attribution_plan.py`.

A *cell* is one combination of code and config: `Cell("bad", S)` is the bad
commit's code with the delta keys in S at their bad values and every other
delta key set back to its good value; `Cell("good", S)` is the good commit's
code with the keys in S set to their bad values. Every quantity reported is a
*contrast*, a weighted sum of cells, evaluated seed by seed (paired, common
random numbers) and summarised with the same t interval as the search
(`decide.paired_step`); with a deterministic probe the intervals are exact.

With k delta keys and f(S) = metric at Cell("bad", S):
  main effect of i   = mean over S not holding i of f(S+i) - f(S)
  interaction of i,j = mean over S holding neither of f(S+i+j) - f(S+i) - f(S+j) + f(S)
                       (the extra change when both move, beyond their separate changes)
  Shapley value of i = the usual weighted mean of f(S+i) - f(S); they sum to f(all) - f({})
  config effect      = f(all) - f({}),   code effect = f({}) - metric at Cell("good", {})

Each key's estimate is judged against min_effect into a `Finding`, whose values are
the JSON `finding` strings: "matters", "no effect", "below the min effect" (real, too
small to matter), "unclear", "matters only together" and "not measured".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import combinations
from typing import Any, NamedTuple

from .decide import Samples, paired_step
from .model import Direction
from .settings import same_value


class _Absent:
    """A key one config does not have. It cannot be requested through overrides."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()


@dataclass(frozen=True)
class Delta:
    key: str
    good: Any  # value in the good config, or ABSENT
    bad: Any  # value in the bad config, or ABSENT


def config_delta(good_cfg: Mapping[str, Any], bad_cfg: Mapping[str, Any],
                 pins: Mapping[str, Any]) -> list[Delta]:
    """Every unpinned key whose value differs, one-sided keys included, sorted by key."""
    deltas = []
    for key in sorted(set(good_cfg) | set(bad_cfg)):
        if key in pins:
            continue
        good, bad = good_cfg.get(key, ABSENT), bad_cfg.get(key, ABSENT)
        if good is ABSENT or bad is ABSENT:
            if good is not bad:
                deltas.append(Delta(key, good, bad))
        elif not same_value(good, bad):
            deltas.append(Delta(key, good, bad))
    return deltas


# -- cells and contrasts -----------------------------------------------------------------


class Cell(NamedTuple):
    code: str  # "good" or "bad": whose code runs
    bad_keys: frozenset[str]  # delta keys at their bad value; the others at their good value


Contrast = Mapping[Cell, float]


def subsets(keys: Iterable[str]) -> list[frozenset[str]]:
    """All subsets, smallest first, in a stable order."""
    items = sorted(keys)
    return [frozenset(c) for r in range(len(items) + 1) for c in combinations(items, r)]


def _add(out: dict[Cell, float], cell: Cell, weight: float) -> None:
    out[cell] = out.get(cell, 0.0) + weight


def increment(base: frozenset[str], key: str) -> dict[Cell, float]:
    """f(base + key) - f(base): moving one key to its bad value in one context."""
    return {Cell("bad", base | {key}): 1.0, Cell("bad", base - {key}): -1.0}


def main_effect(keys: Iterable[str], key: str) -> dict[Cell, float]:
    others = [k for k in keys if k != key]
    out: dict[Cell, float] = {}
    subs = subsets(others)
    for s in subs:
        _add(out, Cell("bad", s | {key}), 1.0 / len(subs))
        _add(out, Cell("bad", s), -1.0 / len(subs))
    return out


def interaction(keys: Iterable[str], a: str, b: str) -> dict[Cell, float]:
    others = [k for k in keys if k not in (a, b)]
    out: dict[Cell, float] = {}
    subs = subsets(others)
    for s in subs:
        for cell_keys, sign in ((s | {a, b}, 1.0), (s | {a}, -1.0), (s | {b}, -1.0), (s, 1.0)):
            _add(out, Cell("bad", cell_keys), sign / len(subs))
    return out


def shapley(keys: Iterable[str], key: str) -> dict[Cell, float]:
    """Exact Shapley value of `key` in the game S -> f(S) - f({})."""
    others = [k for k in keys if k != key]
    k = len(others) + 1
    out: dict[Cell, float] = {}
    for s in subsets(others):
        w = math.factorial(len(s)) * math.factorial(k - len(s) - 1) / math.factorial(k)
        _add(out, Cell("bad", s | {key}), w)
        _add(out, Cell("bad", s), -w)
    return out


def _difference(plus: Cell, minus: Cell) -> dict[Cell, float]:
    """plus - minus as a contrast; empty when they are the same cell (no keys to move)."""
    return {} if plus == minus else {plus: 1.0, minus: -1.0}


def config_contrast(keys: Iterable[str]) -> dict[Cell, float]:
    return _difference(Cell("bad", frozenset(keys)), Cell("bad", frozenset()))


def code_contrast() -> dict[Cell, float]:
    return _difference(Cell("bad", frozenset()), Cell("good", frozenset()))


def total_contrast(keys: Iterable[str]) -> dict[Cell, float]:
    return _difference(Cell("bad", frozenset(keys)), Cell("good", frozenset()))


def code_at_bad_contrast(keys: Iterable[str]) -> dict[Cell, float]:
    """The code change measured with the bad config on both sides."""
    return _difference(Cell("bad", frozenset(keys)), Cell("good", frozenset(keys)))


@dataclass(frozen=True)
class Estimate:
    effect: float  # metric units; nan when not measured
    ci: tuple[float, float]  # 95%
    n: int  # seeds that entered the estimate

    @property
    def measured(self) -> bool:
        return self.n > 0 and math.isfinite(self.effect)


UNMEASURED = Estimate(math.nan, (math.nan, math.nan), 0)


def estimate(contrast: Contrast, values: Mapping[Cell, Samples]) -> Estimate:
    """The contrast on every seed measured in all its cells, as a paired interval."""
    cells = [c for c, w in contrast.items() if w != 0.0]
    if any(c not in values for c in cells):
        return UNMEASURED
    seeds = set.intersection(*(set(values[c]) for c in cells)) if cells else set()
    if not seeds:
        return UNMEASURED if cells else Estimate(0.0, (0.0, 0.0), 0)
    per_seed = {s: math.fsum(contrast[c] * values[c][s] for c in cells) for s in sorted(seeds)}
    step = paired_step(dict.fromkeys(per_seed, 0.0), per_seed, Direction.HIGHER)
    return Estimate(step.effect, step.ci, step.n)


class Finding(StrEnum):
    """What an estimate says about a key. The values are the JSON `finding` strings.

    The attribution object also uses "not controllable" for a key it could not set
    back (no estimate at all); it is not a Finding because nothing was judged.
    """

    MATTERS = "matters"  # the interval excludes zero and the effect reaches min_effect
    NONE = "no effect"  # within +-min_effect, and holds zero or is negligible
    # the interval excludes zero and sits within +-min_effect, the effect at least
    # NEGLIGIBLE * min_effect: real, but smaller than the change the user asked to care
    # about (calling it "no effect" hid a fifth of a change)
    SMALL = "below the min effect"
    UNCLEAR = "unclear"  # the interval is too wide to tell
    # its main effect does not reach min_effect, or moved alone it does nothing, while an
    # interaction with another key (or its main effect, averaged over the others) does
    TOGETHER = "matters only together"
    UNMEASURED = "not measured"


# An effect under this fraction of min_effect is no effect even when its interval excludes
# zero: each key's 95% interval misses zero for 1 null key in 20, and with several keys and
# few seeds such a key (0.0006 against a min effect of 0.03, say) would read as "small". It
# also keeps float round-off of an exactly zero contrast (a zero-width interval) at zero.
NEGLIGIBLE = 0.2


def judge(est: Estimate, min_effect: float) -> Finding:
    """MATTERS, SMALL, NONE, UNCLEAR or UNMEASURED (TOGETHER needs the other keys)."""
    if not est.measured:
        return Finding.UNMEASURED
    lo, hi = est.ci
    if (lo > 0 or hi < 0) and abs(est.effect) >= min_effect:
        return Finding.MATTERS
    if -min_effect <= lo and hi <= min_effect:
        real = lo > 0 or hi < 0
        return Finding.SMALL if real and abs(est.effect) >= NEGLIGIBLE * min_effect \
            else Finding.NONE
    return Finding.UNCLEAR


def verdict(code: Finding, config: Finding) -> str:
    """config, code, mixed or none: which parts changed the metric by at least min_effect."""
    if code is Finding.MATTERS and config is Finding.MATTERS:
        return "mixed"
    if config is Finding.MATTERS:
        return "config"
    if code is Finding.MATTERS:
        return "code"
    return "none"


# -- per-key results ---------------------------------------------------------------------


@dataclass(frozen=True)
class KeyEffect:
    key: str
    effect: Estimate  # main effect (factorial) or increment in one context (otherwise)
    shapley: Estimate | None  # None when the design cannot give it exactly
    finding: Finding
    partners: tuple[str, ...] = ()  # keys it has a significant interaction with
    # factorial only: the key moved alone, every other key at its good value, and the
    # other keys its main effect is averaged over (the two differ when keys interact)
    alone: Estimate | None = None
    averaged_over: tuple[str, ...] = ()

    @property
    def significant(self) -> bool:
        return self.finding in (Finding.MATTERS, Finding.TOGETHER) or bool(self.partners)


@dataclass(frozen=True)
class Interaction:
    keys: tuple[str, str]
    effect: Estimate


def factorial_effects(keys: Sequence[str], values: Mapping[Cell, Samples], min_effect: float
                      ) -> tuple[list[KeyEffect], list[Interaction]]:
    """Main effects, Shapley values and significant pairwise interactions of a 2^k design."""
    inters = []
    for a, b in combinations(sorted(keys), 2):
        est = estimate(interaction(keys, a, b), values)
        if judge(est, min_effect) is Finding.MATTERS:
            inters.append(Interaction((a, b), est))
    effects = []
    for key in sorted(keys):
        main = estimate(main_effect(keys, key), values)
        partners = tuple(sorted({k for i in inters if key in i.keys for k in i.keys} - {key}))
        finding = judge(main, min_effect)
        alone = estimate(increment(frozenset(), key), values)
        if partners and finding is not Finding.MATTERS:
            finding = Finding.TOGETHER
        elif (finding is Finding.MATTERS or partners) and len(keys) > 1 and judge(
                alone, min_effect) in (Finding.NONE, Finding.SMALL):
            # a pure AND: the main effect is half the interaction and reaches min_effect,
            # yet the key moved alone does nothing; it matters only with the others
            finding = Finding.TOGETHER
        effects.append(KeyEffect(key, main, estimate(shapley(keys, key), values), finding,
                                 partners, alone=alone,
                                 averaged_over=tuple(sorted(set(keys) - {key}))))
    return effects, inters


def increment_effects(base: frozenset[str], keys: Sequence[str],
                      values: Mapping[Cell, Samples], min_effect: float,
                      *, exact_shapley: bool = False) -> list[KeyEffect]:
    """Each key moved alone in the context `base` (keys in base are moved out of it)."""
    out = []
    for key in sorted(keys):
        est = estimate(increment(base, key), values)
        out.append(KeyEffect(key, est, est if exact_shapley else None, judge(est, min_effect)))
    return out
