"""Attribution runs: the controlled A/B cells between two commits, measured through a Measurer.

Orchestration on top of `Measurer` and the attribution modules: it reads the
configs the probe reported at both commits, plans a design that fits the run
budget (`attribution_plan`), runs it through `Cells` (`attribution_designs`),
drops keys the probe will not let it set and plans again, and returns the SPEC
section 5 attribution object with its words (`attribution_result`). It reports
progress through a callback; it never prints, exits or touches git itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import attribute as A
from . import attribution_words as W
from . import decide
from .attribute import ABSENT, Cell, Finding
from .attribution_cells import (
    ROLE,
    Cells,
    CornerSpoiled,
    OutOfBudget,
    Progress,
    Uncontrollable,
)
from .attribution_designs import Design, run_design
from .attribution_plan import MAX_FACTORIAL_KEYS, Plan, describe_plan, plan_design
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
                      reused=measurer.reused - start_reused, seeds=list(cells.seeds),
                      min_effect=min_effect)
        if cells.aside and result.get("notes") is not None:
            result["notes"].append(cells.aside_words())
        # no verdict word when code and config could not be told apart (the sentence says so)
        verdict = "" if result.get("config_effect") is None else f"{result['verdict']}: "
        of = "" if cells.budget is None else f" of {cells.budget} budgeted"
        say(f"attribution: {verdict}{result['sentence']} ({result['runs']} probe runs{of})")
        return result

    fallback_notes: list[str] = []
    refused_at_good: list[str] = []  # new keys the good code would not run with
    if any(d.good is ABSENT for d in deltas) and not any(d.bad is ABSENT for d in deltas):
        # a key new at the culprit cannot be removed from the bad code: set them at good
        # (a key removed at the culprit could not be removed from the good code either)
        cells.budget = max_runs
        full = len(deltas) <= MAX_FACTORIAL_KEYS and cells.fits(2 ** len(deltas) - 1)
        n_cells = 2 ** len(deltas) - 1 if full else len(deltas) + (len(deltas) > 1)
        out: dict[str, Any] | None = None
        if cells.fits(n_cells):
            say(f"attribution design: {_set_at_good_words(deltas, full)} "
                f"({n_cells} cell{'s' if n_cells > 1 else ''})")
            tried = _keys_set_at_good(cells, deltas, min_effect, pins, say, full)
            if isinstance(tried, tuple):
                note, refused = tried
                fallback_notes.append(note)
                refused_at_good = [k for k in refused if by_key[k].good is ABSENT]
                not_controllable.update(dict.fromkeys(
                    refused_at_good, "the good code does not take it, and no override can "
                    "remove it from the bad code"))
            out = _dict_or_none(tried)
        else:
            left = (max_runs or 0) - cells.used
            fallback_notes.append(
                f"the run budget had {left} runs left, too few to set the keys new at the "
                f"culprit at the good code ({n_cells * len(seeds)} needed)")
            say(f"attribution design: {fallback_notes[-1]}")
        if out is not None:
            return finish(_more_seeds(cells, out, max_runs, say, lambda: _dict_or_none(
                _keys_set_at_good(cells, deltas, min_effect, pins, say, full))))
        cells.use_keys([])
    spent = cells.used  # after any runs the design above took
    plan = plan_design(len(keys), len(seeds), None if max_runs is None else max_runs - spent,
                       corner_possible=all(by_key[k].bad is not ABSENT for k in keys))
    if plan is None:
        needed = spent + (1 + len(keys)) * len(seeds)
        raise BudgetTooSmall(f"--max-runs {max_runs} is too small to attribute: it needs at "
                             f"least {needed} probe runs here", needed)
    cells.budget = spent + plan.runs(len(seeds))
    say(f"attribution design: {describe_plan(plan, len(keys))}; budget {cells.budget} probe "
        f"runs ({len(seeds)} seed{'s' if len(seeds) > 1 else ''} per cell)")

    design = Design(plan, keys, notes=fallback_notes)
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

    first = build_result(design, cells, deltas, not_controllable, min_effect, pins,
                         refused_at_good)

    def again() -> dict[str, Any]:
        cells.use_keys(design.keys)
        cells.measure(Cell("good", frozenset()))
        cells.measure(Cell("bad", frozenset(design.keys)))
        rerun = Design(design.plan, design.keys)
        run_design(rerun, cells, min_effect)
        rerun.notes = design.notes + [n for n in rerun.notes if n not in design.notes]
        return build_result(rerun, cells, deltas, not_controllable, min_effect, pins,
                            refused_at_good)

    return finish(_more_seeds(cells, first, max_runs, say, again))


SEED_CAP = 16  # more seeds than this per cell: the effect sits at the min effect


def _more_seeds(cells: Cells, result: dict[str, Any], max_runs: int | None, say: Progress,
                again: Callable[[], dict[str, Any] | None]) -> dict[str, Any]:
    """While a key is unclear, measure every cell on twice the seeds and read it again.

    Up to four times the first seeds (at most SEED_CAP) and within `max_runs`; the
    runs taken before are kept. The last full reading is returned, with a note.
    """
    first = len(cells.seeds)
    cap = min(4 * first, max(first, SEED_CAP))
    at_first = _unclear(result)
    stayed = ""
    while first > 1 and (unclear := _unclear(result)):
        n = len(cells.seeds)
        more = min(n, cap - n)
        need = len(cells.runs) * more
        if more == 0:
            stayed = "the most this attribution takes"
        elif max_runs is not None and cells.used + need > max_runs:
            stayed = (f"{need} more runs were needed and the run budget had "
                      f"{max(max_runs - cells.used, 0)} left")
        if stayed:
            stayed = f"{', '.join(unclear)} stayed unclear on {n} seeds ({stayed})"
            break
        say(f"attribution: {', '.join(unclear)} unclear on {n} seeds: measuring every cell "
            f"on {n + more}")
        cells.add_seeds(range(max(cells.seeds) + 1, max(cells.seeds) + 1 + more))
        cells.budget = max_runs
        try:
            out = again()
        except OutOfBudget:
            out = None
        if max_runs is None:
            cells.budget = cells.used
        if out is None:  # the reading before stands, on its seeds
            cells.seeds = cells.seeds[:n]
            stayed = (f"{', '.join(unclear)} stayed unclear on {n} seeds (the runs on more "
                      "seeds did not complete)")
            break
        result = out
    if len(cells.seeds) > first:
        result["notes"].append(
            f"{', '.join(at_first)} {'was' if len(at_first) == 1 else 'were'} unclear on "
            f"{first} seeds: every cell was measured on {len(cells.seeds)}")
    if stayed:
        result["notes"].append(stayed)
    return result


def _unclear(result: Mapping[str, Any]) -> list[str]:
    return [d["key"] for d in result["deltas"] if d["finding"] == Finding.UNCLEAR.value]


def _set_at_good_words(deltas: Sequence[A.Delta], full: bool) -> str:
    new = [d.key for d in deltas if d.good is ABSENT]
    how = "added to" if len(new) == len(deltas) else "set to its bad value at"
    each = ("in every combination" if full and len(deltas) > 1 else
            "alone, then all" if len(deltas) > 1 else "")
    return (f"{', '.join(new)} {'is' if len(new) == 1 else 'are'} new at the culprit: each "
            f"changed key {how} the good code {each}").rstrip()


def _dict_or_none(out: dict[str, Any] | tuple[str, list[str]] | None
                  ) -> dict[str, Any] | None:
    return out if isinstance(out, dict) else None


def _keys_set_at_good(cells: Cells, deltas: Sequence[A.Delta], min_effect: float,
                      pins: Mapping[str, Any], say: Progress, full: bool
                      ) -> dict[str, Any] | tuple[str, list[str]] | None:
    """Some changed key is absent at good: set the changed keys to their bad values at the
    good code, in every combination (`full`) or each alone and then all. When the good
    code will not take a key (it ignores it, or fails with it: the caller's design then
    works at the bad code, where the new keys are not controllable), a note saying why
    and the keys it refused; None when the budget runs out."""
    keys = [d.key for d in deltas]
    cells.use_keys(keys)
    wanted = A.subsets(keys) if full else [frozenset({k}) for k in keys] + [frozenset(keys)]
    try:
        cells.measure(Cell("good", frozenset()))
        cells.measure(Cell("bad", frozenset(keys)))
        for s in sorted(wanted, key=lambda s: (len(s), sorted(s))):
            cells.measure(Cell("good", s))
    except CornerSpoiled as exc:
        return _refused(cells, deltas, dict(exc.reasons), say)
    except OutOfBudget:
        return None
    return build_added_result(cells, deltas, min_effect, pins, full=full)


def _refused(cells: Cells, deltas: Sequence[A.Delta], reasons: dict[str, str],
             say: Progress) -> tuple[str, list[str]]:
    """The good code refused a key: which other new keys does it take? Each is set alone
    (the first refusal stopped the design), so that only refused keys are called so."""
    new = [d.key for d in deltas if d.good is ABSENT]
    taken = []
    for k in new:
        if k in reasons:
            continue
        try:
            cells.measure(Cell("good", frozenset({k})))
            taken.append(k)
        except CornerSpoiled as exc:
            reasons.update(exc.reasons)
        except OutOfBudget:
            break
    note = ("the good code does not take " + ", ".join(
        f"{k} ({why})" for k, why in reasons.items()) + f", so {', '.join(new)} "
        + ("stays" if len(new) == 1 else "stay") + " with the code (no override can "
        "remove a key from the bad code): the other keys are set back there")
    for k in taken:  # measured at the good code alone, worth saying though not in the split
        est = A.estimate({Cell("good", frozenset({k})): 1.0, Cell("good", frozenset()): -1.0},
                         cells.values)
        if est.measured:
            note += (f"; {k} set at the good code alone moves it by "
                     f"{W.show_number(est.effect)} (95% CI {W.show_number(est.ci[0])}.."
                     f"{W.show_number(est.ci[1])})")
    say(f"attribution design: {note}")
    return note, sorted(reasons)


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
