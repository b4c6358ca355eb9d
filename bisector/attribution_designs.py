"""The attribution's designs: which cells each one measures, and the effects read off them.

It runs the planned design through `Cells` (a full factorial, each key set back
alone, or ddmin followed by screenings and a factorial on the keys found) and
reads each key's effect and the interactions off the measured values with the
arithmetic in `attribute`. It never sizes the budget (`attribution_plan` does)
and never lays out the result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from . import attribute as A
from .attribute import Cell, Finding, Interaction, KeyEffect
from .attribution_cells import Cells, CornerSpoiled
from .attribution_plan import DDMIN_FOLLOW_UP, MAX_FACTORIAL_KEYS, Plan
from .ddmin import DDResult, ddmin, reproduces
from .decide import Samples


@dataclass
class Design:
    """What was planned and what ddmin found; read by the analysis, also after a budget stop."""

    plan: Plan
    keys: list[str]  # controllable delta keys
    subset: frozenset[str] | None = None  # ddmin's answer
    ddmin: DDResult | None = None
    context: frozenset[str] = frozenset()  # keys at bad values when the others were screened
    factorial_on_subset: bool = False  # else each found key is set back alone
    notes: list[str] = field(default_factory=list)


def run_design(d: Design, cells: Cells, min_effect: float) -> None:
    keys = d.keys
    none = frozenset[str]()
    if d.plan.design == "none":
        return
    cells.measure(Cell("bad", none))  # first: it asks for every key, so it tests them all
    if d.plan.design == "factorial":
        for s in A.subsets(keys):
            cells.measure(Cell("bad", s))
    elif d.plan.design == "screening":
        for k in keys:
            cells.measure(Cell("bad", frozenset(keys) - {k}))
    else:
        _run_ddmin(d, cells, min_effect)
    if d.plan.corner:
        try:
            cells.measure(Cell("good", frozenset(keys)))
        except CornerSpoiled as exc:
            note = ("the good code ignores " + ", ".join(
                f"{k} ({why})" for k, why in exc.reasons.items())
                + "; the code effect at the bad config is not measured")
            d.notes.append(note)
            # the design line promised this cell only if the good code takes the values
            cells.progress(f"attribution design: the good code at the bad config is dropped: "
                           f"{note}")


def _run_ddmin(d: Design, cells: Cells, min_effect: float) -> None:
    """ddmin, then every other key once, until the keys found explain the config part.

    ddmin finds a smallest set of keys that moves the metric past the midpoint
    between "all keys reverted" and "none reverted". A smaller contributor can hide
    behind it, so every other key is then moved alone with the found keys at their
    bad values, and those that matter join. While the keys left still move the
    metric together (keys that act only in combination), ddmin searches them again.
    The last of these screenings gives every other key its effect and interval.
    """
    full = frozenset(d.keys)
    natural = cells.measure(Cell("bad", full))
    found, calls, minimal = frozenset[str](), 0, True
    screened: frozenset[str] | None = None
    while True:
        base = cells.measure(Cell("bad", found))
        left = A.estimate({Cell("bad", full): 1.0, Cell("bad", found): -1.0}, cells.values)
        left_matters = A.judge(left, min_effect) is Finding.MATTERS
        if (found or not left_matters) and screened != found:
            rest = sorted(full - found)
            for k in rest:
                cells.measure(Cell("bad", found | {k}))
            screened = found
            alone = {e.key for e in A.increment_effects(found, rest, cells.values, min_effect)
                     if e.finding is Finding.MATTERS}
            if alone:
                found |= alone
                continue
        if found == full or not left_matters or not minimal:
            break
        context, others = found, sorted(full - found)

        def test(s: frozenset[str], context: frozenset[str] = context,
                 base: Samples = base) -> bool:
            return reproduces(cells.measure(Cell("bad", context | s)), natural, base)

        room = cells.cells_left()
        reserve = len(others) + 2 ** DDMIN_FOLLOW_UP - 2 + d.plan.corner
        cap = d.plan.ddmin_calls - calls if room is None else min(
            d.plan.ddmin_calls - calls, room - reserve)
        r = ddmin(others, test, max_calls=max(cap, 0),
                    known={frozenset(others): True, frozenset[str](): False})
        found, calls, minimal = found | r.subset, calls + r.calls, r.minimal
        cells.progress(f"  ddmin: {', '.join(sorted(r.subset))} move the metric "
                       f"({r.calls} tests)")
    d.ddmin = DDResult(found, calls, minimal)
    d.context = d.subset = found
    _factorial_on_found(d, cells, min_effect)


def _factorial_on_found(d: Design, cells: Cells, min_effect: float) -> None:
    """A factorial on the keys found, or, when it does not fit, on the ones that matter.

    Under noise, or when keys split the change evenly, ddmin can keep keys that do
    nothing. Each found key is then set back alone; those with no effect are dropped
    when the metric shows that dropping them all changes nothing.
    """
    found = d.context

    def fits(keys: frozenset[str]) -> bool:
        wanted = [Cell("bad", s) for s in A.subsets(keys)]
        return len(keys) <= MAX_FACTORIAL_KEYS and cells.fits(
            cells.missing(wanted) + d.plan.corner)

    if not fits(found):
        for k in sorted(found):
            cells.measure(Cell("bad", found - {k}))
        keep = frozenset(e.key for e in A.increment_effects(found, sorted(found), cells.values,
                                                             min_effect)
                         if e.finding is not Finding.NONE)
        if keep != found and fits(keep):
            cells.measure(Cell("bad", keep))
            dropped = A.estimate({Cell("bad", found): 1.0, Cell("bad", keep): -1.0},
                                 cells.values)
            if A.judge(dropped, min_effect) is Finding.NONE:
                found = keep
    d.subset = found
    d.factorial_on_subset = fits(found)
    if d.factorial_on_subset:
        for s in A.subsets(found):
            cells.measure(Cell("bad", s))


def analyze(d: Design, values: Mapping[Cell, Samples], min_effect: float
            ) -> tuple[list[KeyEffect], list[Interaction]]:
    keys = d.keys
    if d.plan.design == "factorial":
        return A.factorial_effects(keys, values, min_effect)
    if d.plan.design == "screening":
        return A.increment_effects(frozenset(keys), keys, values, min_effect,
                                   exact_shapley=len(keys) == 1), []
    if d.plan.design == "ddmin":
        if d.subset is None:  # the budget ran out before ddmin finished
            return A.increment_effects(frozenset(), keys, {}, min_effect), []
        subset = d.subset if d.factorial_on_subset else d.context
        if d.factorial_on_subset:
            effects, inters = A.factorial_effects(sorted(subset), values, min_effect)
        else:
            effects, inters = A.increment_effects(subset, sorted(subset), values, min_effect), []
        # every other key: moved alone with the found keys at bad values (or, for a found
        # key that the factorial left out, set back alone from them)
        effects += A.increment_effects(d.context, sorted(set(keys) - subset), values,
                                       min_effect)
        return sorted(effects, key=lambda e: e.key), inters
    return [], []


def key_contrast(d: Design, key: str) -> Mapping[Cell, float]:
    """The cells behind a key's reported effect, for the report's run links."""
    if d.plan.design == "factorial":
        return A.main_effect(d.keys, key)
    if d.plan.design == "ddmin" and d.subset is not None:
        if key in d.subset and d.factorial_on_subset:
            return A.main_effect(sorted(d.subset), key)
        return A.increment(d.context, key)
    return A.increment(frozenset(d.keys), key)
