"""The attribution's run budget: which design fits it, and the plan in words.

Pure logic: counts of keys and seeds and a run cap in, a `Plan` out; no
processes, files or clock. It decides how many cells a design may add, never
which cells those are (`attribution_designs.py`) nor what they measure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_FACTORIAL_KEYS = 5  # beyond this, ddmin first narrows the keys down
DDMIN_FOLLOW_UP = 4  # the budget reserves a full factorial on this many keys after ddmin


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


def describe_plan(plan: Plan, k: int) -> str:
    # only "if": the cell is dropped when the good code ignores one of the bad values
    corner = " + the good code at the bad config, if it takes the bad values" if plan.corner else ""
    if plan.design == "factorial":
        return f"full factorial over {k} key(s) at the bad code ({2 ** k} cells){corner}"
    if plan.design == "ddmin":
        return (f"ddmin over {k} keys (<= {plan.ddmin_calls} tests), each other key moved "
                f"alone, then a factorial on the keys found{corner}")
    if plan.design == "screening":
        return f"each of {k} keys set back alone (no interactions: budget too small for more)"
    return "no controllable config key differs: code against nothing"
