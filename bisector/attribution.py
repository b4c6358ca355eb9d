"""Attribution runs: the controlled A/B cells between two commits, measured through a Measurer.

Orchestration on top of `Measurer` and the attribution modules: it reads the
configs the probe reported at both commits, plans a design that fits the run
budget (`attribution_plan`), runs it through `Cells` (`attribution_designs`),
drops keys the probe will not let it set and plans again, and returns the SPEC
section 5 attribution object with its words (`attribution_result`). It reports
progress through a callback; it never prints, exits or touches git itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from . import attribute as A
from . import decide
from .attribute import ABSENT, Cell
from .attribution_cells import (
    ROLE,
    Cells,
    CornerSpoiled,
    OutOfBudget,
    Progress,
    Uncontrollable,
)
from .attribution_designs import Design, run_design
from .attribution_plan import Plan, describe_plan, plan_design
from .attribution_result import build_added_result, build_result
from .attribution_words import confounder_note
from .decide import Samples
from .errors import BudgetTooSmall, ProbeFailedAtEndpoint, ProbeProtocolError
from .measure import Measurer
from .model import Direction


def attribute(measurer: Measurer, *, good: str, bad: str, metric: str, direction: Direction,
              seeds: Sequence[int] | None = None, pins: Mapping[str, Any] | None = None,
              min_effect: float | None = None, max_runs: int | None = None,
              repeats: int = 3, progress: Progress | None = None) -> dict[str, Any]:
    """Split the change of `metric` from `good` to `bad` between config keys and code.

    `good` and `bad` are full shas (the culprit's parent and the culprit, or any
    two commits). `seeds`: the hunt's; None decides from seeds 0 and 1 at both
    commits (one seed when the probe ignores it at both, else `repeats`). `pins`: the
    hunt's pins (default: the measurer's); they are applied by the measurer and
    left out of the delta. `min_effect`: smallest change that matters (None: the
    hunt's default from the endpoint runs). `max_runs`: cap on the probe runs this
    call starts. Returns the SPEC section 5 attribution object plus words.
    """
    say = progress or (lambda _msg: None)
    pins = dict(measurer.pins if pins is None else pins)
    start_runs, start_reused = measurer.probe_runs, measurer.reused
    if max_runs is not None:
        fresh = _fresh(measurer, good, seeds or [0, 1]) + _fresh(measurer, bad, seeds or [0, 1])
        if fresh > max_runs:
            raise BudgetTooSmall(f"--max-runs {max_runs} is too small to attribute: measuring "
                                 f"the two commits alone takes {fresh} probe runs", fresh)
    if seeds is None:  # one seed only if both commits ignore it (noise may start at bad)
        exact = all(decide.seed_insensitive(_endpoint(measurer, sha, [0, 1], metric, name))
                    for sha, name in ((good, "good"), (bad, "bad")))
        seeds = [0] if exact else list(range(max(repeats, 2)))
    seeds = list(seeds)
    good_values = _endpoint(measurer, good, seeds, metric, "good")
    bad_values = _endpoint(measurer, bad, seeds, metric, "bad")
    if min_effect is None:
        min_effect = decide.default_min_effect(good_values, bad_values)
    scale = max(abs(decide.mean(good_values)), abs(decide.mean(bad_values)), 1.0)
    min_effect = max(min_effect, 1e-9 * scale)  # float round-off is never an effect

    good_cfg = measurer.measure(good, seeds[0], role=ROLE).config
    bad_cfg = measurer.measure(bad, seeds[0], role=ROLE).config
    deltas = A.config_delta(good_cfg, bad_cfg, pins)
    by_key = {d.key: d for d in deltas}
    not_controllable = {d.key: f"absent at {good[:8]}: overrides cannot remove a key"
                        for d in deltas if d.good is ABSENT}
    keys = [d.key for d in deltas if d.key not in not_controllable]
    held = f" (held by --pin: {', '.join(pins)})" if pins else ""
    say(f"attribution {good[:8]}..{bad[:8]}: "
        + (confounder_note(deltas, pins) or f"the configs do not differ{held}"))

    cells = Cells(measurer, good, bad, metric, seeds, by_key, say)
    cells.start = start_runs

    def finish(result: dict[str, Any]) -> dict[str, Any]:
        """The run counts and the settings, and one progress line, for either design."""
        result.update(good=good, bad=bad, metric=metric, direction=direction.value,
                      budget=cells.budget, runs=measurer.probe_runs - start_runs,
                      reused=measurer.reused - start_reused, seeds=seeds,
                      min_effect=min_effect)
        # no verdict word when code and config could not be told apart (the sentence says so)
        verdict = "" if result.get("config_effect") is None else f"{result['verdict']}: "
        of = "" if cells.budget is None else f" of {cells.budget} budgeted"
        say(f"attribution: {verdict}{result['sentence']} ({result['runs']} probe runs{of})")
        return result

    spent = cells.used
    if any(d.good is ABSENT and d.bad is not ABSENT for d in deltas):
        # a key new at the culprit cannot be removed from the bad code: set them at good
        out = _keys_set_at_good(cells, deltas, max_runs, min_effect, pins, say)
        if out is not None:
            return finish(out)
        cells.use_keys([])
    plan = plan_design(len(keys), len(seeds), None if max_runs is None else max_runs - spent,
                       corner_possible=all(by_key[k].bad is not ABSENT for k in keys))
    if plan is None:
        needed = spent + (1 + len(keys)) * len(seeds)
        raise BudgetTooSmall(f"--max-runs {max_runs} is too small to attribute: it needs at "
                             f"least {needed} probe runs here", needed)
    cells.budget = spent + plan.runs(len(seeds))
    say(f"attribution design: {describe_plan(plan, len(keys))}; budget {cells.budget} probe "
        f"runs ({len(seeds)} seed{'s' if len(seeds) > 1 else ''} per cell)")

    design = Design(plan, keys)
    if plan.design == "screening" and len(keys) > 1:  # said in the result, not only on stderr
        design.notes.append("the run budget allowed each key to be set back alone only: "
                            "interactions were not tested, and the keys' shares may add up "
                            "to more than 100%")
    while True:
        cells.use_keys(design.keys)
        cells.measure(Cell("good", frozenset()))
        cells.measure(Cell("bad", frozenset(design.keys)))
        try:
            run_design(design, cells, min_effect)
            break
        except Uncontrollable as exc:
            not_controllable.update(exc.reasons)
            for k, why in exc.reasons.items():
                say(f"  {k} is not controllable: {why}")
            keys = [k for k in design.keys if k not in exc.reasons]
            left = cells.budget - cells.used
            replan = plan_design(len(keys), len(seeds), left, corner_possible=all(
                by_key[k].bad is not ABSENT for k in keys))
            design = Design(replan or Plan("none", 0, False), keys)
            if replan is None:
                design.notes.append("the run budget ran out after dropping not-controllable keys")
        except OutOfBudget:
            design.notes.append("the run budget ran out; unmeasured effects are marked so")
            break

    return finish(build_result(design, cells, deltas, not_controllable, min_effect, pins))


def _keys_set_at_good(cells: Cells, deltas: Sequence[A.Delta], max_runs: int | None,
                      min_effect: float, pins: Mapping[str, Any], say: Progress
                      ) -> dict[str, Any] | None:
    """Some changed key is absent at good: set each changed key to its bad value at the
    good code alone, then all together. None when the good code ignores one (it cannot
    tell them apart: the caller's design then works at the bad code, where the new keys
    are not controllable) or the budget does not fit."""
    keys = [d.key for d in deltas]
    new = [d.key for d in deltas if d.good is ABSENT]
    n_cells = len(keys) + (len(keys) > 1)
    cells.budget = max_runs
    if not cells.fits(n_cells):
        return None
    how = "added to" if len(new) == len(keys) else "set to its bad value at"
    say(f"attribution design: {', '.join(new)} {'is' if len(new) == 1 else 'are'} new at the "
        f"culprit: each changed key {how} the good code alone"
        f"{', then all' if len(keys) > 1 else ''} ({n_cells} cells)")
    cells.use_keys(keys)
    none, every = frozenset[str](), frozenset(keys)
    try:
        cells.measure(Cell("good", none))
        cells.measure(Cell("bad", every))
        for k in keys:
            cells.measure(Cell("good", frozenset({k})))
        cells.measure(Cell("good", every))
    except CornerSpoiled as exc:
        say("attribution design: the good code does not take "
            + ", ".join(f"{k} ({why})" for k, why in exc.reasons.items()))
        return None
    except OutOfBudget:
        return None
    return build_added_result(cells, deltas, min_effect, pins)


def _fresh(m: Measurer, sha: str, seeds: Sequence[int]) -> int:
    """How many of these plain runs the store does not hold yet."""
    return sum(m.store.reusable_run(m.request(sha, seed)) is None for seed in seeds)


def _endpoint(m: Measurer, sha: str, seeds: Sequence[int], metric: str, name: str) -> Samples:
    values: dict[int, float] = {}
    for seed in seeds:
        run = m.measure(sha, seed, role=ROLE)
        if not run.ok:
            raise ProbeFailedAtEndpoint(f"the probe fails at the {name} commit {sha[:8]}: "
                                        f"{run.error or run.outcome.value}", run.output_tail)
        value = run.value(metric)
        if value is None:
            raise ProbeProtocolError(f"the probe did not report metric {metric!r} at {sha[:8]}")
        values[seed] = value
    return values
