"""Delta debugging over config keys: Zeller's ddmin behind one counting gate, and its oracle.

Pure logic: a test on subsets in, a subset and a count of tests out; no
processes, files or clock. It knows nothing of cells or probe runs:
`attribution_designs.py` builds the test from measured cells and caps the calls.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from .decide import Samples, mean


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
