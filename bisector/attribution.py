"""Attribution runs: the controlled A/B cells between two commits, measured through a Measurer.

Orchestration on top of `Measurer` and the arithmetic in `attribute`: it reads
the configs the probe reported at both commits, plans a design that fits the
run budget, measures each cell once per seed (stored runs are reused, the plain
endpoint runs included), notices keys the probe will not let it set, and returns
the SPEC section 5 attribution object with its words. It reports progress
through a callback; it never prints, exits or touches git itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import attribute as A
from . import decide
from .attribute import ABSENT, Cell, Delta, Estimate, Finding, Interaction, KeyEffect, Plan
from .decide import Samples
from .errors import ProbeFailedAtEndpoint, ProbeProtocolError, UsageError
from .measure import Measurer
from .model import Direction, Run, canonical_json
from .settings import same_value

Progress = Callable[[str], None]
ROLE = "attribute"


class _Uncontrollable(Exception):
    def __init__(self, reasons: dict[str, str]) -> None:
        super().__init__(", ".join(reasons))
        self.reasons = reasons


class _OutOfBudget(Exception):
    pass


@dataclass
class _Design:
    """What was planned and what ddmin found; read by the analysis, also after a budget stop."""

    plan: Plan
    keys: list[str]  # controllable delta keys
    subset: frozenset[str] | None = None  # ddmin's answer
    ddmin: A.DDResult | None = None
    context: frozenset[str] = frozenset()  # keys at bad values when the others were screened
    factorial_on_subset: bool = False  # else each found key is set back alone
    notes: list[str] = field(default_factory=list)


class _Cells:
    """Measures cells once per seed within a run budget, and checks what the probe applied."""

    def __init__(self, m: Measurer, good: str, bad: str, metric: str, seeds: Sequence[int],
                 deltas: Mapping[str, Delta], progress: Progress) -> None:
        self.m, self.good, self.bad, self.metric = m, good, bad, metric
        self.seeds = list(seeds)
        self.deltas = deltas
        self.progress = progress
        self.start = m.probe_runs
        self.budget: int | None = None
        self.keys: list[str] = []  # controllable keys: those the cells move
        self._cache: dict[tuple[str, str], tuple[dict[int, float], list[Run]]] = {}
        self.values: dict[Cell, Samples] = {}  # cells of the current key set
        self.runs: dict[Cell, list[Run]] = {}

    @property
    def used(self) -> int:
        return self.m.probe_runs - self.start

    def cells_left(self) -> int | None:
        """Cells (each once per seed) that the budget still allows."""
        return None if self.budget is None else (self.budget - self.used) // len(self.seeds)

    def fits(self, cells: int) -> bool:
        """Would `cells` more cells (each once per seed) stay inside the budget?"""
        return self.budget is None or self.used + cells * len(self.seeds) <= self.budget

    def missing(self, wanted: Sequence[Cell]) -> int:
        """How many of these cells are not measured yet."""
        return sum((c.code, canonical_json(self.overrides(c))) not in self._cache
                   for c in set(wanted))

    def use_keys(self, keys: Sequence[str]) -> None:
        self.keys = list(keys)
        self.values, self.runs = {}, {}

    def overrides(self, cell: Cell) -> dict[str, Any]:
        if cell.code == "bad":
            return {k: self.deltas[k].good for k in self.keys if k not in cell.bad_keys}
        return {k: self.deltas[k].bad for k in sorted(cell.bad_keys)}

    def config(self, cell: Cell) -> dict[str, Any]:
        """The values of the moved keys in this cell (absent ones left out)."""
        out = {}
        for k in self.keys:
            v = self.deltas[k].bad if k in cell.bad_keys else self.deltas[k].good
            if v is not ABSENT:
                out[k] = v
        return out

    def measure(self, cell: Cell) -> Samples:
        if cell in self.values:
            return self.values[cell]
        commit = self.bad if cell.code == "bad" else self.good
        over = self.overrides(cell)
        cache_key = (cell.code, canonical_json(over))
        if cache_key not in self._cache:
            samples: dict[int, float] = {}
            fresh = sum(self.m.store.reusable_run(self.m.request(commit, seed, over)) is None
                        for seed in self.seeds)
            if self.budget is not None and self.used + fresh > self.budget:
                raise _OutOfBudget
            runs = self._measure_seeds(commit, over)
            for seed, run in zip(self.seeds, runs, strict=True):
                if run.ok:
                    if over:
                        self._check(cell, over, run)
                    if (v := run.value(self.metric)) is not None:
                        samples[seed] = v
            self._cache[cache_key] = (samples, runs)
            if over:
                self.progress(f"  {commit[:8]} {self._describe(cell)}: {self.metric} = "
                              f"{_fmt(samples)}")
        samples, runs = self._cache[cache_key]
        if samples:
            self.values[cell] = samples
        self.runs[cell] = runs
        return samples

    def _measure_seeds(self, commit: str, over: Mapping[str, Any]) -> list[Run]:
        many = getattr(self.m, "measure_many", None)  # runs seeds in parallel with --jobs
        if many is not None:
            runs: list[Run] = many([(commit, s) for s in self.seeds], over or None, role=ROLE)
            return runs
        return [self.m.measure(commit, s, over or None, role=ROLE) for s in self.seeds]

    def _describe(self, cell: Cell) -> str:
        moved = sorted(cell.bad_keys) if cell.code == "good" else sorted(
            set(self.keys) - cell.bad_keys)
        side = "bad" if cell.code == "good" else "good"
        return f"with {', '.join(moved) or 'nothing'} at {side} values"

    def _check(self, cell: Cell, over: Mapping[str, Any], run: Run) -> None:
        """Every moved key must be reported with the value the cell stands for."""
        wrong: dict[str, str] = {}
        for k in self.keys:
            d = self.deltas[k]
            expected = d.bad if k in cell.bad_keys else d.good
            got = run.config.get(k, ABSENT)
            if _same(got, expected):
                continue
            if k in over:
                wrong[k] = (f"asked for {A.show_value(expected)}, the probe reported "
                            f"{A.show_value(got)}")
            else:
                wrong[k] = (f"it became {A.show_value(got)} when other keys were set: "
                            "it follows them")
        if not wrong:
            return
        if cell.code == "good":
            # The good code may not read a key at all; that spoils this cell, not the key.
            raise _CornerSpoiled(wrong)
        raise _Uncontrollable(wrong)


class _CornerSpoiled(Exception):
    def __init__(self, reasons: dict[str, str]) -> None:
        super().__init__(", ".join(reasons))
        self.reasons = reasons


def _same(a: Any, b: Any) -> bool:
    if a is ABSENT or b is ABSENT:
        return a is b
    return same_value(a, b)


def _fmt(samples: Mapping[int, float]) -> str:
    if not samples:
        return "no value"
    if len(samples) == 1:
        return f"{next(iter(samples.values())):.4g}"
    return f"{decide.mean(samples):.4g} (mean of {len(samples)})"


# -- the designs -------------------------------------------------------------------------


def _run_design(d: _Design, cells: _Cells, min_effect: float) -> None:
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
        except _CornerSpoiled as exc:
            d.notes.append("the good code ignores " + ", ".join(
                f"{k} ({why})" for k, why in exc.reasons.items())
                + "; the code effect at the bad config is not measured")


def _run_ddmin(d: _Design, cells: _Cells, min_effect: float) -> None:
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
            return A.reproduces(cells.measure(Cell("bad", context | s)), natural, base)

        room = cells.cells_left()
        reserve = len(others) + 2 ** A.DDMIN_FOLLOW_UP - 2 + d.plan.corner
        cap = d.plan.ddmin_calls - calls if room is None else min(
            d.plan.ddmin_calls - calls, room - reserve)
        r = A.ddmin(others, test, max_calls=max(cap, 0),
                    known={frozenset(others): True, frozenset[str](): False})
        found, calls, minimal = found | r.subset, calls + r.calls, r.minimal
        cells.progress(f"  ddmin: {', '.join(sorted(r.subset))} move the metric "
                       f"({r.calls} tests)")
    d.ddmin = A.DDResult(found, calls, minimal)
    d.context = d.subset = found
    _factorial_on_found(d, cells, min_effect)


def _factorial_on_found(d: _Design, cells: _Cells, min_effect: float) -> None:
    """A factorial on the keys found, or, when it does not fit, on the ones that matter.

    Under noise, or when keys split the change evenly, ddmin can keep keys that do
    nothing. Each found key is then set back alone; those with no effect are dropped
    when the metric shows that dropping them all changes nothing.
    """
    found = d.context

    def fits(keys: frozenset[str]) -> bool:
        wanted = [Cell("bad", s) for s in A.subsets(keys)]
        return len(keys) <= A.MAX_FACTORIAL_KEYS and cells.fits(
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


def _analyze(d: _Design, values: Mapping[Cell, Samples], min_effect: float
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


# -- the entry point ---------------------------------------------------------------------


def attribute(measurer: Measurer, *, good: str, bad: str, metric: str, direction: Direction,
              seeds: Sequence[int] | None = None, pins: Mapping[str, Any] | None = None,
              min_effect: float | None = None, max_runs: int | None = None,
              repeats: int = 3, progress: Progress | None = None) -> dict[str, Any]:
    """Split the change of `metric` from `good` to `bad` between config keys and code.

    `good` and `bad` are full shas (the culprit's parent and the culprit, or any
    two commits). `seeds`: the hunt's; None decides as the hunt does (seeds 0 and 1
    at good; one seed when the probe ignores it, else `repeats`). `pins`: the
    hunt's pins (default: the measurer's); they are applied by the measurer and
    left out of the delta. `min_effect`: smallest change that matters (None: the
    hunt's default from the endpoint runs). `max_runs`: cap on the probe runs this
    call starts. Returns the SPEC section 5 attribution object plus words.
    """
    say = progress or (lambda _msg: None)
    pins = dict(measurer.pins if pins is None else pins)
    start_runs, start_reused = measurer.probe_runs, measurer.reused
    if max_runs is not None:
        fresh = _fresh(measurer, good, seeds or [0, 1]) + _fresh(measurer, bad, seeds or [0])
        if fresh > max_runs:
            raise UsageError(f"--max-runs {max_runs} is too small to attribute: measuring the "
                             f"two commits alone takes {fresh} probe runs")
    if seeds is None:
        probe = _endpoint(measurer, good, [0, 1], metric, "good")
        seeds = [0] if decide.seed_insensitive(probe) else list(range(max(repeats, 2)))
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
        + (A.confounder_note(deltas, pins) or f"the configs do not differ{held}"))

    cells = _Cells(measurer, good, bad, metric, seeds, by_key, say)
    cells.start = start_runs
    spent = cells.used
    plan = A.plan_design(len(keys), len(seeds), None if max_runs is None else max_runs - spent,
                         corner_possible=all(by_key[k].bad is not ABSENT for k in keys))
    if plan is None:
        raise UsageError(f"--max-runs {max_runs} is too small to attribute: it needs at least "
                         f"{spent + (1 + len(keys)) * len(seeds)} probe runs here")
    cells.budget = spent + plan.runs(len(seeds))
    say(f"attribution design: {_describe_plan(plan, len(keys))}; budget {cells.budget} probe "
        f"runs ({len(seeds)} seed{'s' if len(seeds) > 1 else ''} per cell)")

    design = _Design(plan, keys)
    while True:
        cells.use_keys(design.keys)
        cells.measure(Cell("good", frozenset()))
        cells.measure(Cell("bad", frozenset(design.keys)))
        try:
            _run_design(design, cells, min_effect)
            break
        except _Uncontrollable as exc:
            not_controllable.update(exc.reasons)
            for k, why in exc.reasons.items():
                say(f"  {k} is not controllable: {why}")
            keys = [k for k in design.keys if k not in exc.reasons]
            left = cells.budget - cells.used
            replan = A.plan_design(len(keys), len(seeds), left, corner_possible=all(
                by_key[k].bad is not ABSENT for k in keys))
            design = _Design(replan or Plan("none", 0, False), keys)
            if replan is None:
                design.notes.append("the run budget ran out after dropping not-controllable keys")
        except _OutOfBudget:
            design.notes.append("the run budget ran out; unmeasured effects are marked so")
            break

    result = _result(design, cells, deltas, not_controllable, min_effect, pins)
    result.update(good=good, bad=bad, metric=metric, direction=direction.value,
                  budget=cells.budget, runs=measurer.probe_runs - start_runs,
                  reused=measurer.reused - start_reused, seeds=seeds, min_effect=min_effect)
    say(f"attribution: {result['verdict']}: {result['sentence']} "
        f"({result['runs']} probe runs of {cells.budget} budgeted)")
    return result


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


def _describe_plan(plan: Plan, k: int) -> str:
    corner = " + the good code at the bad config" if plan.corner else ""
    if plan.design == "factorial":
        return f"full factorial over {k} key(s) at the bad code ({2 ** k} cells){corner}"
    if plan.design == "ddmin":
        return (f"ddmin over {k} keys (<= {plan.ddmin_calls} tests), each other key moved "
                f"alone, then a factorial on the keys found{corner}")
    if plan.design == "screening":
        return f"each of {k} keys set back alone (no interactions: budget too small for more)"
    return "no controllable config key differs: code against nothing"


# -- the answer --------------------------------------------------------------------------


def _result(d: _Design, cells: _Cells, deltas: Sequence[Delta], not_controllable: dict[str, str],
            min_effect: float, pins: Mapping[str, Any]) -> dict[str, Any]:
    values = cells.values
    keys = d.keys
    effects, inters = _analyze(d, values, min_effect)
    by_key = {e.key: e for e in effects}
    code = A.estimate(A.code_contrast(), values)
    config = A.estimate(A.config_contrast(keys), values)
    total = A.estimate(A.total_contrast(keys), values)
    verdict = A.verdict(A.judge(code, min_effect), A.judge(config, min_effect))
    whole = total.effect if A.judge(total, min_effect) is Finding.MATTERS else None

    def share_of(part: Estimate) -> float | None:
        if not whole or not part.measured:
            return None
        return round(part.effect / whole, 12) + 0.0  # no -0.0 for an exact zero

    shares = {e.key: share_of(e.shapley or e.effect) for e in effects}
    code_share = share_of(code)
    rows, lines = [], []
    for delta in deltas:
        e = by_key.get(delta.key)
        line = A.key_line(delta, e, share=shares.get(delta.key),
                          not_controllable=not_controllable.get(delta.key, "not measured"))
        lines.append(line)
        rows.append(_delta_json(delta, e, shares.get(delta.key), line,
                                _run_ids(cells, _key_contrast(d, delta.key))
                                if e is not None else []))
    uncontrolled = [k for k in not_controllable if k in {dd.key for dd in deltas}]
    sentence = A.attribution_sentence(
        verdict, deltas=deltas, effects=by_key, shares=shares, interactions=inters, code=code,
        code_share=code_share, not_controllable=uncontrolled, min_effect=min_effect,
        config=config)
    out: dict[str, Any] = {
        "verdict": verdict,
        "code_effect": _num(code.effect), "code_ci": _ci(code),
        "config_effect": _num(config.effect), "config_ci": _ci(config),
        "total_effect": _num(total.effect), "total_ci": _ci(total),
        "code_share": code_share,
        "deltas": rows,
        "interactions": [{"keys": list(i.keys), "effect": i.effect.effect, "ci": _ci(i.effect),
                          "significant": True,
                          "run_ids": _run_ids(cells, A.interaction(keys, *i.keys))}
                         for i in inters],
        "sentence": sentence,
        "lines": lines,
        "design": d.plan.design,
        "ddmin": None if d.ddmin is None else {
            "subset": sorted(d.ddmin.subset), "tests": d.ddmin.calls, "minimal": d.ddmin.minimal},
        "held": dict(pins),
        "not_controllable": uncontrolled,
        "not_controllable_why": {k: not_controllable[k] for k in uncontrolled},
        "factorial": _table(cells),
        "notes": list(d.notes),
    }
    recommend = {e.key: cells.deltas[e.key].good for e in effects if e.significant}
    out["recommend_pins"] = recommend
    out["pin_flags"] = A.pin_flags(recommend)
    out["pin_advice"] = A.pin_advice(recommend) if verdict in ("config", "mixed") else ""
    corner = Cell("good", frozenset(keys))
    if d.plan.corner and corner in values:
        at_bad = A.estimate(A.code_at_bad_contrast(keys), values)
        out["code_effect_at_bad_config"] = _num(at_bad.effect)
        out["code_at_bad_config_ci"] = _ci(at_bad)
        both = {c: w for c, w in A.code_at_bad_contrast(keys).items()}
        for c, w in A.code_contrast().items():
            both[c] = both.get(c, 0.0) - w
        differ = A.estimate(both, values)
        if A.judge(differ, min_effect) is Finding.MATTERS:
            out["notes"].append(
                f"the code change acts differently under the two configs: "
                f"{A.show_number(code.effect)} at the good config, "
                f"{A.show_number(at_bad.effect)} at the bad one")
    return out


def _key_contrast(d: _Design, key: str) -> Mapping[Cell, float]:
    """The cells behind a key's reported effect, for the report's run links."""
    if d.plan.design == "factorial":
        return A.main_effect(d.keys, key)
    if d.plan.design == "ddmin" and d.subset is not None:
        if key in d.subset and d.factorial_on_subset:
            return A.main_effect(sorted(d.subset), key)
        return A.increment(d.context, key)
    return A.increment(frozenset(d.keys), key)


def _delta_json(delta: Delta, e: KeyEffect | None, share: float | None, line: str,
                run_ids: list[int]) -> dict[str, Any]:
    absent = "good" if delta.good is ABSENT else "bad" if delta.bad is ABSENT else None
    return {
        "key": delta.key,
        "good": None if delta.good is ABSENT else delta.good,
        "bad": None if delta.bad is ABSENT else delta.bad,
        "absent": absent,
        "effect": None if e is None else _num(e.effect.effect),
        "ci": None if e is None else _ci(e.effect),
        "share": share,
        "shapley": None if e is None or e.shapley is None else _num(e.shapley.effect),
        "significant": bool(e is not None and e.significant),
        "finding": "not controllable" if e is None else e.finding.value,
        "interacts_with": [] if e is None else list(e.partners),
        "controllable": e is not None,
        "line": line,
        "run_ids": run_ids,
    }


def _num(x: float) -> float | None:
    return x if x == x else None  # NaN is not JSON


def _ci(est: Estimate) -> list[float] | None:
    return [est.ci[0], est.ci[1]] if est.measured else None


def _run_ids(cells: _Cells, contrast: Mapping[Cell, float]) -> list[int]:
    ids = {r.run_id for c, w in contrast.items() if w for r in cells.runs.get(c, [])
           if r.run_id is not None}
    return sorted(ids)


def _table(cells: _Cells) -> list[dict[str, Any]]:
    order = sorted(cells.runs, key=lambda c: (c.code != "good", len(c.bad_keys),
                                              sorted(c.bad_keys)))
    rows = []
    for cell in order:
        samples = cells.values.get(cell, {})
        rows.append({
            "code": cell.code,
            "commit": cells.bad if cell.code == "bad" else cells.good,
            "config": cells.config(cell),
            "overrides": cells.overrides(cell),
            "mean": decide.mean(samples) if samples else None,
            "n": len(samples),
            "run_ids": [r.run_id for r in cells.runs[cell] if r.run_id is not None],
        })
    return rows
