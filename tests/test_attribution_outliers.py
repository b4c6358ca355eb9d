"""Attribution under runs that diverged yet report a metric: such a cell's run is set aside
(`attribute.outlying`), named in a note, and the CASE.md reading stands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from gitrepo import History, probe_cmd, run_cli

from bisector.attribute import Cell
from bisector.outliers import outlying

KEYS = ("a", "b", "c")


def factorial(rng: np.random.Generator, seeds: int = 4, own: float = 0.01,
              by_seed: float = 0.01) -> dict[Cell, dict[int, float]]:
    """A 2^3 design at the bad code: key a costs 0.25; noise by seed and of each run."""
    effect = rng.normal(0, by_seed, seeds)
    cells = [Cell("bad", frozenset(k for k, on in zip(KEYS, bits, strict=True) if on))
             for bits in np.ndindex(2, 2, 2)]
    return {c: {s: 0.86 - 0.25 * ("a" in c.bad_keys) + effect[s] + rng.normal(0, own)
                for s in range(seeds)} for c in cells}


def test_gaussian_cells_are_never_set_aside() -> None:
    rng = np.random.default_rng(11)
    assert not any(outlying(factorial(rng, seeds=int(rng.integers(3, 17)))) for _ in range(500))


def test_a_diverged_run_is_set_aside_even_when_noise_follows_the_seed_alone() -> None:
    for own in (0.01, 0.0):  # 0: every cell of a seed shares its noise, no residual at all
        values = factorial(np.random.default_rng(3), own=own)
        cell = Cell("bad", frozenset({"b"}))
        values[cell][2] = 0.1
        assert outlying(values) == {(cell, 2)}


def test_an_effect_that_differs_by_seed_is_not_an_outlier() -> None:
    values = factorial(np.random.default_rng(4), own=0.001, by_seed=0.001)
    cell = Cell("bad", frozenset({"a", "c"}))
    values[cell] = {s: v + (0.1 if s % 2 else 0.0) for s, v in values[cell].items()}
    assert outlying(values) == set()  # far from the fit, but among the cells' levels


def test_two_cells_or_two_seeds_cannot_tell_and_set_nothing_aside() -> None:
    values = factorial(np.random.default_rng(5))
    cell = Cell("bad", frozenset())
    values[cell][1] = 0.1
    assert outlying(dict(list(values.items())[:2])) == set()
    assert outlying({c: {s: v for s, v in vs.items() if s < 2} for c, vs in values.items()}
                    ) == set()


def test_the_case_reading_stands_when_attribution_runs_diverge(tmp_path: Path) -> None:
    # 8% of runs report -1, config by config. With the search's such runs set aside but
    # not the attribution's, this read "object_big (-0.168) moves it, but the config delta
    # as a whole does not", verdict none, the other two keys unclear (and before either,
    # the search itself ended inconclusive, exit 3)
    h = History(tmp_path / "repo")
    effects = {"object_big": -0.25, "pad_object": 0.0}
    keys = ("object_big", "probe_big", "pad_object")
    common = {"value": 0.86, "effects": effects, "run_noise": 0.01, "diverge_cells": 0.08}
    shas = [h.commit(config={**dict.fromkeys(keys, False), "salt": "d"}, **common)
            for _ in range(8)]
    shas += [h.commit(config={**dict.fromkeys(keys, True), "salt": "d"}, **common)
             for _ in range(6)]
    proc = run_cli("find", "--repo", str(h.path), "--good", shas[0], "--metric", "ssim",
                   "--probe", probe_cmd(), "--json", "--out", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["first_bad"]["commit"] == shas[8]
    att = result["attribution"]
    assert att["verdict"] == "config"
    deltas = {d["key"]: d for d in att["deltas"]}
    assert deltas["object_big"]["significant"]
    assert abs(deltas["object_big"]["effect"] + 0.25) < 0.02
    assert deltas["probe_big"]["finding"] == deltas["pad_object"]["finding"] == "no effect"
    (note,) = [n for n in att["notes"] if "set aside as outliers" in n]
    assert "(-1)" in note or "(-1.25)" in note
