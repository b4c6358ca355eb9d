"""The attribution's cells, measured through a Measurer once per seed within a run budget.

A cell becomes overrides at the good or the bad commit; stored runs and cells
measured before are reused; a cell that would pass the budget is not started;
and every run is checked for the values the cell stands for, so that keys the
probe will not let it set are noticed. It reports progress through a callback;
it never prints, exits or touches git itself, and reads no effect off the values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import decide
from .attribute import ABSENT, Cell, Delta
from .attribution_words import show_value
from .decide import Samples
from .measure import Measurer
from .model import Run, canonical_json
from .outliers import outlying
from .settings import same_value

Progress = Callable[[str], None]
ROLE = "attribute"


class Uncontrollable(Exception):
    def __init__(self, reasons: dict[str, str]) -> None:
        super().__init__(", ".join(reasons))
        self.reasons = reasons


class OutOfBudget(Exception):
    pass


class CornerSpoiled(Exception):
    def __init__(self, reasons: dict[str, str]) -> None:
        super().__init__(", ".join(reasons))
        self.reasons = reasons


class Cells:
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
        self._cache: dict[tuple[str, str], dict[int, Run]] = {}  # runs by seed
        self._raw: dict[Cell, Samples] = {}  # cells of the current key set, every value
        self._screened: tuple[dict[Cell, Samples], list[tuple[Cell, int, float]]] | None = None
        self._taken_at_good: set[str] = set()  # keys the good code has run with
        self.runs: dict[Cell, list[Run]] = {}

    @property
    def values(self) -> dict[Cell, Samples]:
        """Each measured cell's values by seed, diverged runs set aside (see `aside`)."""
        return self._screen()[0]

    @property
    def aside(self) -> list[tuple[Cell, int, float]]:
        """(cell, seed, value) of the runs left out of `values` as outliers."""
        return self._screen()[1]

    def _screen(self) -> tuple[dict[Cell, Samples], list[tuple[Cell, int, float]]]:
        if self._screened is None:
            out = outlying(self._raw)
            kept = {c: {s: v for s, v in vs.items() if (c, s) not in out}
                    for c, vs in self._raw.items()}
            self._screened = ({c: vs for c, vs in kept.items() if vs},
                              [(c, s, self._raw[c][s]) for c, s in sorted(
                                  out, key=lambda cs: (cs[0].code, sorted(cs[0].bad_keys), cs[1]))])
        return self._screened

    def aside_words(self) -> str:
        listed = [f"{(self.bad if c.code == 'bad' else self.good)[:8]} {self._describe(c)} "
                  f"seed {s} ({v:.4g})" for c, s, v in self.aside]
        shown = "; ".join(listed[:4]) + (f"; and {len(listed) - 4} more" if len(listed) > 4
                                         else "")
        return (f"{len(listed)} run{'s' if len(listed) > 1 else ''} set aside as outliers, "
                "far from their cell's level and their seed's other runs (a diverged "
                f"training?): {shown}")

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
        """How many of these cells are not measured yet (on every seed)."""
        return sum(not set(self.seeds) <= self._cache.get(self._key(c), {}).keys()
                   for c in set(wanted))

    def _key(self, cell: Cell) -> tuple[str, str]:
        """Cells that ask the same code for the same overrides share their runs."""
        return cell.code, canonical_json(self.overrides(cell))

    def use_keys(self, keys: Sequence[str]) -> None:
        self.keys = list(keys)
        self._raw, self._screened, self.runs = {}, None, {}

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

    def add_seeds(self, seeds: Sequence[int]) -> None:
        """Measure every cell on these seeds too (cells measured before run only these)."""
        self.seeds += [s for s in seeds if s not in self.seeds]
        self._raw, self._screened, self.runs = {}, None, {}

    def measure(self, cell: Cell) -> Samples:
        if cell in self._raw:
            return self._raw[cell]
        commit = self.bad if cell.code == "bad" else self.good
        over = self.overrides(cell)
        done = self._cache.setdefault(self._key(cell), {})
        todo = [s for s in self.seeds if s not in done]
        if todo:
            fresh = sum(self.m.store.reusable_run(self.m.request(commit, seed, over)) is None
                        for seed in todo)
            if self.budget is not None and self.used + fresh > self.budget:
                raise OutOfBudget
            # A key the good code has not taken yet may be refused: one seed tells, before
            # every seed (and its retry) is spent on it.
            first = 1 if cell.code == "good" and set(over) - self._taken_at_good else len(todo)
            for batch in (todo[:first], todo[first:]):
                if batch:
                    done.update(zip(batch, self._measure_seeds(commit, over, batch),
                                    strict=True))
                    self._check_all(cell, over, [done[s] for s in batch])
            if cell.code == "good":
                self._taken_at_good |= set(over)
        runs = [done[s] for s in self.seeds]
        samples = {s: v for s, r in zip(self.seeds, runs, strict=True)
                   if r.ok and (v := r.value(self.metric)) is not None}
        if todo and over:
            self.progress(f"  {commit[:8]} {self._describe(cell)}: {self.metric} = "
                          f"{_fmt(samples)}")
        if samples:
            self._raw[cell], self._screened = samples, None
        self.runs[cell] = runs
        return samples

    def _check_all(self, cell: Cell, over: Mapping[str, Any], runs: Sequence[Run]) -> None:
        if not over:
            return
        for run in runs:
            if run.ok:
                self._check(cell, over, run)
            elif cell.code == "good":  # the good code fails with these values
                why = ("the probe fails with it at the good code: "
                       f"{run.error or f'exit {run.exit_code}'}")
                raise CornerSpoiled(dict.fromkeys(sorted(over), why))

    def _measure_seeds(self, commit: str, over: Mapping[str, Any], seeds: Sequence[int]
                       ) -> list[Run]:
        many = getattr(self.m, "measure_many", None)  # runs seeds in parallel with --jobs
        if many is not None:
            runs: list[Run] = many([(commit, s) for s in seeds], over or None, role=ROLE)
            return runs
        return [self.m.measure(commit, s, over or None, role=ROLE) for s in seeds]

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
                wrong[k] = (f"asked for {show_value(expected)}, the probe reported "
                            f"{show_value(got)}")
            else:
                wrong[k] = (f"it became {show_value(got)} when other keys were set: "
                            "it follows them")
        if not wrong:
            return
        if cell.code == "good":
            # The good code may not read a key at all; that spoils this cell, not the key.
            raise CornerSpoiled(wrong)
        raise Uncontrollable(wrong)


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
