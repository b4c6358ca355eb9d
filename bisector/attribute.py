"""Attribution arithmetic: how much of a metric change each config key, and the code, explain.

Pure logic: configs and per-seed metric values in, numbers and words out; no
processes, files or clock. `attribution.py` measures the cells this module
asks for and hands the values back.

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
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import combinations
from typing import Any, NamedTuple

from .decide import Samples, mean, paired_step
from .model import Direction
from .settings import same_value

MAX_FACTORIAL_KEYS = 5  # beyond this, ddmin first narrows the keys down
DDMIN_FOLLOW_UP = 4  # the budget reserves a full factorial on this many keys after ddmin


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
    MATTERS = "matters"  # the interval excludes zero and the effect reaches min_effect
    NONE = "no effect"  # the whole interval sits within +-min_effect
    UNCLEAR = "unclear"  # the interval is too wide to tell
    UNMEASURED = "not measured"


def judge(est: Estimate, min_effect: float) -> Finding:
    if not est.measured:
        return Finding.UNMEASURED
    lo, hi = est.ci
    if (lo > 0 or hi < 0) and abs(est.effect) >= min_effect:
        return Finding.MATTERS
    if -min_effect <= lo and hi <= min_effect:
        return Finding.NONE
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

    @property
    def significant(self) -> bool:
        return self.finding is Finding.MATTERS or bool(self.partners)


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
        effects.append(KeyEffect(key, main, estimate(shapley(keys, key), values),
                                 judge(main, min_effect), partners))
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


# -- delta debugging ---------------------------------------------------------------------


class _OutOfCalls(Exception):
    pass


class Gate:
    """Every candidate subset passes here: answers are cached and fresh calls counted."""

    def __init__(self, test: Callable[[frozenset[str]], bool], max_calls: int) -> None:
        self._test = test
        self.max_calls = max_calls
        self.calls = 0
        self.seen: dict[frozenset[str], bool] = {}

    def consider(self, subset: frozenset[str]) -> bool:
        if subset not in self.seen:
            if self.calls >= self.max_calls:
                raise _OutOfCalls
            self.calls += 1
            self.seen[subset] = self._test(subset)
        return self.seen[subset]


@dataclass(frozen=True)
class DDResult:
    subset: frozenset[str]
    calls: int
    minimal: bool  # False when the call budget ran out before 1-minimality was shown


def ddmin(items: Sequence[str], test: Callable[[frozenset[str]], bool], *, max_calls: int,
          known: Mapping[frozenset[str], bool] | None = None) -> DDResult:
    """Zeller's ddmin: a 1-minimal subset of `items` on which `test` still fails (is True).

    `test(all items)` is assumed True and `test({})` False (pass them in `known`,
    where they cost no call). The halves are tried alone, then complements of
    ever finer chunks, the granularity doubling when nothing fails:
    [a b c d e f] -> [a b c][d e f] -> drop [a b], [c], [d e] or [f] -> ...
    At granularity len(current) every single key is dropped once, so the answer
    is 1-minimal. Stops early, returning the smallest failing set found so far
    (minimal=False), when `max_calls` fresh tests are spent.
    """
    gate = Gate(test, max_calls)
    gate.seen.update(known or {})
    current = sorted(items)
    n = 2
    try:
        while len(current) >= 2:
            chunks = _split(current, n)
            reduced = False
            # Halves alone first; finer chunks only as complements, which is where keys
            # that act together are found in fewer tests (measured: pairs among 16 keys
            # take 14 tests on average instead of 19).
            for chunk in chunks if n == 2 else []:
                if gate.consider(frozenset(chunk)):
                    current, n, reduced = chunk, 2, True
                    break
            if not reduced and n > 2:
                for chunk in chunks:
                    rest = [x for x in current if x not in chunk]
                    if gate.consider(frozenset(rest)):
                        current, n, reduced = rest, max(n - 1, 2), True
                        break
            if not reduced:
                if n >= len(current):
                    break
                n = min(2 * n, len(current))
    except _OutOfCalls:
        return DDResult(frozenset(current), gate.calls, False)
    return DDResult(frozenset(current), gate.calls, True)


def _split(items: list[str], n: int) -> list[list[str]]:
    size, extra = divmod(len(items), n)
    out, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        out.append(items[start:end])
        start = end
    return [c for c in out if c]


def reproduces(values: Samples, natural: Samples, reverted: Samples) -> bool:
    """ddmin's oracle: do these values sit nearer the bad config's than the good config's?

    Paired by seed, like `decide.classify`, but whichever way the config change
    moved the metric: ddmin looks for the keys that move it, worse or better.
    """
    if not values:
        return False
    sign = 1.0 if mean(natural) >= mean(reverted) else -1.0
    diffs = [sign * (v - (natural.get(s, mean(natural)) + reverted.get(s, mean(reverted))) / 2)
             for s, v in values.items()]
    return math.fsum(diffs) > 0


# -- the run budget ----------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """Which design fits, and how many cells (each run once per seed) it may add.

    Cells are counted beyond the two plain endpoint cells, which are measured first.
    """

    design: str  # "factorial", "ddmin", "screening" or "none"
    cells: int
    corner: bool  # also run the good code with the bad config
    ddmin_calls: int = 0

    def runs(self, n_seeds: int) -> int:
        return self.cells * n_seeds


def ddmin_calls_for(k: int) -> int:
    """Enough fresh tests for ddmin to isolate a few keys among k (it usually needs fewer)."""
    return 3 * k + 8


def plan_design(k: int, n_seeds: int, max_runs: int | None, *, corner_possible: bool = True
                ) -> Plan | None:
    """The richest design whose runs fit in `max_runs`; None when not even the smallest fits.

    k <= 5: full factorial at the bad code (2^k - 1 new cells) plus the good code
    at the bad config; then without that corner; then one key at a time.
    k > 5: all keys reverted (1), ddmin (<= 3k + 8 tests), each other key once,
    twice over (2k), a factorial on up to four keys (14), and the corner (1).
    """

    def fits(cells: int) -> bool:
        return max_runs is None or cells * n_seeds <= max_runs

    corners = (True, False) if corner_possible else (False,)
    if k == 0:
        return Plan("none", 0, False)
    if k <= MAX_FACTORIAL_KEYS:
        for corner in corners:
            if fits(2 ** k - 1 + corner):
                return Plan("factorial", 2 ** k - 1 + corner, corner)
    else:
        follow_up = 2 * k + 2 ** DDMIN_FOLLOW_UP - 2  # two screenings, then a factorial
        for corner in corners:
            calls = ddmin_calls_for(k)
            if max_runs is not None:
                calls = min(calls, max_runs // n_seeds - 1 - follow_up - corner)
            if calls >= 2 * math.ceil(math.log2(k)):
                return Plan("ddmin", 1 + calls + follow_up + corner, corner, calls)
    return Plan("screening", 1 + k, False) if fits(1 + k) else None


# -- words -------------------------------------------------------------------------------


def show_value(value: Any) -> str:
    if value is ABSENT:
        return "(absent)"
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def show_number(x: float) -> str:
    if not math.isfinite(x):
        return "n/a"
    if abs(x) < 5e-13:
        return "0"  # float round-off of an exactly zero contrast
    return f"{x:.3g}"


def _ci_text(est: Estimate) -> str:
    return f"95% CI {show_number(est.ci[0])}..{show_number(est.ci[1])}"


def key_line(delta: Delta, effect: KeyEffect | None, *, share: float | None = None,
             not_controllable: str = "") -> str:
    """One line per delta key, effect and interval included, also when there is no effect."""
    head = f"{delta.key} {show_value(delta.bad)} vs {show_value(delta.good)}"
    if effect is None:
        return (f"{head}: not controllable ({not_controllable}); its effect, if any, "
                "is counted with the code")
    est = effect.effect
    numbers = f"{show_number(est.effect)}, {_ci_text(est)}"
    together = f"together with {' and '.join(effect.partners)}" if effect.partners else ""
    if effect.finding is Finding.MATTERS:
        line = f"{head}: {numbers}"
        if share is not None:
            line += f", {share:.0%} of the change"
        return line + (f"; acts {together}" if together else "")
    if together:
        return f"{head}: matters only {together} (alone {numbers})"
    if effect.finding is Finding.NONE:
        return f"{head}: no effect ({numbers})"
    if effect.finding is Finding.UNCLEAR:
        return f"{head}: unclear ({numbers}); more seeds would tell"
    return f"{head}: not measured (the probe failed or the run budget ran out)"


def _names(keys: Sequence[str]) -> str:
    keys = list(keys)
    return keys[0] if len(keys) == 1 else ", ".join(keys[:-1]) + " and " + keys[-1]


def attribution_sentence(verdict_: str, *, deltas: Sequence[Delta],
                         effects: Mapping[str, KeyEffect], shares: Mapping[str, float | None],
                         interactions: Sequence[Interaction], code: Estimate,
                         code_share: float | None, not_controllable: Sequence[str],
                         min_effect: float, config: Estimate | None = None) -> str:
    """One sentence for the verdict: what explains the change, and what does nothing."""
    by_key = {d.key: d for d in deltas}
    movers = sorted((k for k, e in effects.items() if e.significant),
                    key=lambda k: -abs((effects[k].shapley or effects[k].effect).effect))

    def moved(key: str) -> str:
        d = by_key[key]
        return f"{key} {show_value(d.good)} to {show_value(d.bad)}"

    parts = []
    if verdict_ in ("config", "mixed") and not movers and config is not None:
        parts.append(f"the config delta as a whole explains {show_number(config.effect)} "
                     f"({_ci_text(config)}), no single key does")
    if verdict_ not in ("config", "mixed") and movers:
        each = [f"{moved(k)} ({show_number(effects[k].effect.effect)})" for k in movers]
        parts.append(f"{_names(each)} move it, but the config delta as a whole does not")
    if verdict_ in ("config", "mixed") and movers:
        if len(movers) == 1:
            share = shares.get(movers[0])
            tail = f" explains {share:.0%} of it" if share is not None else " explains it"
            parts.append(moved(movers[0]) + tail)
        else:
            each = [moved(k) + (f" ({s:.0%})" if (s := shares.get(k)) is not None else "")
                    for k in movers]
            parts.append(_names(each) + " explain it")
        for i in interactions:
            parts.append(f"{_names(list(i.keys))} act together "
                         f"(interaction {show_number(i.effect.effect)})")
    if verdict_ in ("code", "mixed"):
        part = f"{code_share:.0%} of it" if code_share is not None else "it"
        parts.append(f"the code change explains {part} ({show_number(code.effect)}, "
                     f"{_ci_text(code)})")
    if verdict_ == "none":
        parts.append(f"neither the code nor the config delta moved it by {show_number(min_effect)}"
                     " or more")
    for finding in (Finding.NONE, Finding.UNCLEAR, Finding.UNMEASURED):
        these = [k for k, e in effects.items() if not e.significant and e.finding is finding]
        if these:
            parts.append(f"{_names(these)}: {finding.value}")
    if not_controllable:
        parts.append(f"{_names(list(not_controllable))}: not controllable, counted with the code")
    return "; ".join(parts)


def pin_flags(pins: Mapping[str, Any]) -> list[str]:
    """`--pin` arguments that hold these keys, e.g. ["object_big=false"]."""
    return [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in pins.items()]


def pin_advice(pins: Mapping[str, Any]) -> str:
    """How to rerun the hunt with the keys that matter held, to see what the code did."""
    if not pins:
        return ""
    flags = " ".join(f"--pin {shlex.quote(flag)}" for flag in pin_flags(pins))
    return (f"to look for a code regression behind this config change, rerun find with "
            f"{flags}")


def confounder_note(deltas: Sequence[Delta], held: Mapping[str, Any]) -> str:
    """What `find` says before it starts when the endpoints' configs differ."""
    if not deltas:
        return ""
    shown = ", ".join(f"{d.key} ({show_value(d.good)} -> {show_value(d.bad)})" for d in deltas)
    note = f"the endpoints' configs differ in {len(deltas)} key(s): {shown}"
    if held:
        note += f"; held by --pin: {', '.join(held)}"
    return note
