"""The noisy-bisection engine against fake probes: budgets, verification, ambiguity, accuracy."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bisector.candidates import Candidates
from bisector.noisy import (
    BAD,
    GOOD,
    NoisySearch,
    SearchResult,
    binary_information,
    gaussian_capacity,
)

Probe = Callable[[int, int], float]  # (commit index, -1 = good; seed) -> value


def ids(n: int) -> list[str]:
    return [f"c{i:04d}" for i in range(n)]


def index(name: str, n: int) -> int:
    return -1 if name == GOOD else n - 1 if name == BAD else int(name[1:])


def drive(engine: NoisySearch, probe: Probe, n: int, untestable: frozenset[int] = frozenset(),
          batch: int = 1) -> tuple[SearchResult, list[tuple[int, int]]]:
    """Run the engine to the end; returns the result and every (commit, seed) it asked for."""
    asked: list[tuple[int, int]] = []
    while runs := engine.next_runs(batch):
        for name, seed in reversed(runs):  # report a batch out of order
            i = index(name, n)
            asked.append((i, seed))
            if i in untestable:
                engine.observe_untestable(name)
            else:
                engine.observe(name, seed, probe(i, seed))
    return engine.result(), asked


def step_probe(culprit: int, step: float, rng: np.random.Generator, rho: float = 0.0,
               drift: float = 0.0, n: int = 1) -> Probe:
    """Metric 0 before the culprit, -step from it on; noise sd 1, a share rho by seed."""
    by_seed: dict[int, float] = {}

    def probe(i: int, seed: int) -> float:
        shared = by_seed.setdefault(seed, float(rng.normal()))
        level = -step * (i >= culprit) - drift * (i + 1) / n
        return level + math.sqrt(rho) * shared + math.sqrt(1 - rho) * float(rng.normal())

    return probe


def deterministic(culprit: int) -> Probe:
    return lambda i, seed: 0.5 if i >= culprit else 0.9


# --- deterministic probes ----------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 400), st.data())
def test_deterministic_probe_finds_the_exact_culprit_within_log2_plus_3(
        n: int, data: st.DataObject) -> None:
    culprit = data.draw(st.integers(0, n - 1))
    engine = NoisySearch(Candidates.linear(ids(n)))
    result, asked = drive(engine, deterministic(culprit), n)
    assert result.status == "found"
    assert result.first_bad == ids(n)[culprit]
    assert result.confidence == 1.0
    assert len(asked) <= math.ceil(math.log2(n)) + 3
    assert result.runs == len(asked)


def test_deterministic_probe_says_so_in_the_per_commit_reasons() -> None:
    engine = NoisySearch(Candidates.linear(ids(50)))
    result, _ = drive(engine, deterministic(17), 50)
    run = [c for c in result.commits if c.n]
    assert run and all(c.reason == "deterministic probe: 1 run" for c in run)
    assert {c.commit: c.decision for c in run}[ids(50)[17]] == "bad"


def test_deterministic_equal_endpoints_is_no_regression() -> None:
    engine = NoisySearch(Candidates.linear(ids(30)))
    result, asked = drive(engine, lambda i, s: 0.7, 30)
    assert result.status == "no-regression"
    assert result.first_bad is None
    # good at seeds 0 and 1, bad at 0 and (before calling it no regression) 1
    assert asked == [(-1, 0), (-1, 1), (29, 0), (29, 1)]


def turns_noisy(culprit: int, sd: float) -> Probe:
    """Exact before the culprit; after it the seed matters (a commit adds nondeterminism)."""
    def probe(i: int, seed: int) -> float:
        if i < culprit:
            return 0.9
        return 0.5 + sd * random.Random(f"{i}-{seed}").gauss(0.0, 1.0)
    return probe


@pytest.mark.parametrize("salt", range(4))
def test_a_probe_exact_only_at_good_is_not_bisected_as_exact(salt: int) -> None:
    # Seeds 0 and 1 agree at good; the commits after the culprit are noisy. Judged as
    # exact, one noisy run on the good side of the midpoint moved the culprit for good.
    n, culprit = 40, 21
    engine = NoisySearch(Candidates.linear(ids(n)))
    probe = turns_noisy(culprit, 0.15)
    result, asked = drive(engine, lambda i, s: probe(i, s + 1000 * salt), n)
    assert result.status == "found" and result.first_bad == ids(n)[culprit]
    assert result.confidence < 1.0  # judged under noise, not as exact
    assert any(i not in (-1, n - 1) and s == 1 for i, s in asked)  # a second seed inside


def test_noisy_bad_below_good_once_is_not_no_regression() -> None:
    # bad's seed 0 lands below good by chance: an exact probe would stop there
    n = 30
    probe = turns_noisy(10, 0.15)
    engine = NoisySearch(Candidates.linear(ids(n)), min_effect=0.1)
    result, asked = drive(engine, lambda i, s: probe(i, s) if (i, s) != (n - 1, 0) else 0.95, n)
    assert (n - 1, 1) in asked
    assert result.status == "found" and result.first_bad == ids(n)[10]


def test_deterministic_drift_is_not_a_culprit() -> None:
    n = 64  # the metric slides a little at every commit: no step carries the change
    engine = NoisySearch(Candidates.linear(ids(n)))
    result, _ = drive(engine, lambda i, s: 1.0 - (i + 1) / n, n)
    assert result.status == "inconclusive"
    assert result.first_bad is None


def test_min_effect_decides_whether_a_deterministic_step_counts() -> None:
    probe: Probe = lambda i, s: 0.9 - 0.05 * (i >= 10)  # noqa: E731
    small = NoisySearch(Candidates.linear(ids(20)), min_effect=0.1)
    assert drive(small, probe, 20)[0].status == "no-regression"
    enough = NoisySearch(Candidates.linear(ids(20)), min_effect=0.01)
    assert drive(enough, probe, 20)[0].first_bad == ids(20)[10]


def test_lower_is_better_metrics() -> None:
    engine = NoisySearch(Candidates.linear(ids(40)), higher_is_better=False)
    result, _ = drive(engine, lambda i, s: 0.2 if i >= 23 else 0.05, 40)
    assert result.first_bad == ids(40)[23]
    assert result.effect == pytest.approx(0.15)
    assert result.good.mean == pytest.approx(0.05) and result.bad.mean == pytest.approx(0.2)


# --- untestable commits --------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.integers(4, 120), st.data())
def test_untestable_neighbours_give_ambiguous_with_the_right_candidates(
        n: int, data: st.DataObject) -> None:
    culprit = data.draw(st.integers(2, n - 2))
    width = data.draw(st.integers(1, 2))
    # the culprit and its `width` parents cannot be built: the step is somewhere among them
    skipped = frozenset(range(culprit - width + 1, culprit + 1))
    engine = NoisySearch(Candidates.linear(ids(n)))
    result, _ = drive(engine, deterministic(culprit), n, untestable=skipped)
    expected = {ids(n)[i] for i in range(culprit - width + 1, culprit + 2)}
    assert result.status == "ambiguous"
    assert {c for c, _ in result.candidates} == expected
    assert result.first_bad is None


def test_noisy_untestable_culprit_is_ambiguous_with_its_neighbour() -> None:
    rng = np.random.default_rng(5)
    n, culprit = 60, 31
    engine = NoisySearch(Candidates.linear(ids(n)))
    result, _ = drive(engine, step_probe(culprit, 6.0, rng), n, untestable=frozenset({culprit}))
    assert result.status == "ambiguous"
    assert {c for c, _ in result.candidates} == {ids(n)[culprit], ids(n)[culprit + 1]}
    assert result.confidence >= 0.99


# --- noisy probes ----------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 200), st.integers(0, 2**32 - 1), st.sampled_from([0.0, 0.7]),
       st.sampled_from([1.0, 3.0]), st.integers(20, 60))
def test_noisy_search_keeps_its_promises(n: int, seed: int, rho: float, step: float,
                                         max_runs: int) -> None:
    rng = np.random.default_rng(seed)
    culprit = int(rng.integers(n))
    engine = NoisySearch(Candidates.linear(ids(n)), max_runs=max_runs, max_runs_per_commit=12)
    result, asked = drive(engine, step_probe(culprit, step, rng, rho), n)
    assert result.done
    assert len(asked) <= max_runs and result.runs == len(asked)
    assert len(set(asked)) == len(asked), "a (commit, seed) pair was asked twice"
    per_commit: dict[int, int] = {}
    for i, _ in asked:
        per_commit[i] = per_commit.get(i, 0) + 1
    # the cap, or (a small step's culprit and parents, or nothing else left to run) a
    # quarter of the budget
    assert max(per_commit.values()) <= max(12, max_runs // 4)
    if result.status == "found":
        assert result.confidence >= 0.99
        assert result.verification is not None and result.verification >= 0.99
        assert result.first_bad is not None
    else:
        assert result.first_bad is None


def test_accuracy_at_3_sigma_n100() -> None:
    rng = np.random.default_rng(2024)
    right, runs = 0, []
    for _ in range(30):
        culprit = int(rng.integers(100))
        engine = NoisySearch(Candidates.linear(ids(100)))
        result, asked = drive(engine, step_probe(culprit, 3.0, rng), 100)
        right += result.first_bad == ids(100)[culprit]
        runs.append(len(asked))
    assert right >= 28
    assert np.mean(runs) <= 35


def test_seed_shared_noise_is_paired_away() -> None:
    # 99% of the variance comes with the seed: paired comparisons see a 15-sigma step
    rng = np.random.default_rng(11)
    engine = NoisySearch(Candidates.linear(ids(200)))
    result, asked = drive(engine, step_probe(77, 1.5, rng, rho=0.99), 200)
    assert result.first_bad == ids(200)[77]
    assert len(asked) <= 25
    reasons = {c.reason for c in result.commits if c.n}
    assert any("deterministic given seed" in r or "paired seeds" in r for r in reasons)


def test_no_regression_between_noisy_endpoints() -> None:
    rng = np.random.default_rng(3)
    statuses = []
    for _ in range(6):
        engine = NoisySearch(Candidates.linear(ids(100)), min_effect=1.0)
        result, _ = drive(engine, step_probe(0, 0.0, rng), 100)
        statuses.append(result.status)
    assert statuses == ["no-regression"] * 6


def test_a_step_near_min_effect_is_never_called_no_regression() -> None:
    # min_effect at half a 1.5 sigma step: the endpoints alone often cannot show it at
    # their cap; the hunt must search on (or say inconclusive), not deny the regression
    rng = np.random.default_rng(1000)
    statuses = []
    for _ in range(12):
        culprit = int(rng.integers(10, 90))
        engine = NoisySearch(Candidates.linear(ids(100)), min_effect=0.75)
        result, _ = drive(engine, step_probe(culprit, 1.5, rng), 100)
        assert result.status != "found" or result.first_bad == ids(100)[culprit]
        statuses.append(result.status)
    assert "no-regression" not in statuses
    assert statuses.count("found") >= 10


def test_a_one_sigma_step_gets_the_runs_it_needs_beyond_the_cap() -> None:
    # a 1 sigma step, min_effect half of it, a cap of 10 runs a commit: a direct check
    # needs ~18 pairs on average here, and endpoints capped at 10 runs are a coin flip on
    # the size. Capped commits had ended these hunts: six of ten called "no-regression"
    # after 20 runs, two found
    n, statuses, beyond = 6, [], 0
    for seed in range(10):
        rng = np.random.default_rng(seed)
        engine = NoisySearch(Candidates.linear(ids(n)), min_effect=0.5, max_runs=200,
                             max_runs_per_commit=10)
        result, asked = drive(engine, step_probe(3, 1.0, rng), n)
        assert result.status != "found" or result.first_bad == ids(n)[3]
        statuses.append(result.status)
        if result.status == "found":  # past the cap, and within a quarter of the budget
            at = [sum(1 for i, _ in asked if i == c) for c in (2, 3)]
            assert max(at) <= 50
            beyond += max(at) > 10
            why = {c.commit: c.reason for c in result.commits}[ids(n)[3]]
            assert why == f"verification pair: {at[1]} runs", why  # not "cap reached"
    assert statuses.count("found") >= 5 and beyond >= 3
    assert statuses.count("no-regression") <= 1


def test_noisy_drift_without_a_step_is_never_found() -> None:
    rng = np.random.default_rng(8)
    for _ in range(3):
        engine = NoisySearch(Candidates.linear(ids(100)), max_runs=120)
        result, _ = drive(engine, step_probe(0, 0.0, rng, drift=2.0, n=100), 100)
        assert result.status in ("inconclusive", "no-regression")


def test_parallel_batches_are_distinct_and_may_arrive_out_of_order() -> None:
    rng = np.random.default_rng(9)
    engine = NoisySearch(Candidates.linear(ids(120)))
    first = engine.next_runs(4)
    assert len(first) == len(set(first)) == 4
    engine = NoisySearch(Candidates.linear(ids(120)))
    result, asked = drive(engine, step_probe(64, 4.0, rng), 120, batch=3)
    assert result.first_bad == ids(120)[64]
    assert len(set(asked)) == len(asked)


def test_pending_runs_are_not_asked_again() -> None:
    engine = NoisySearch(Candidates.linear(ids(10)))
    a, b = engine.next_runs(), engine.next_runs()
    assert a != b and a and b


# --- DAG histories -----------------------------------------------------------------------------


def diamond() -> Candidates:
    """
        good - a - b - d(merge) - e(bad)
                \\- c -/
    """
    names = ["a", "b", "c", "d", "e"]
    parents = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "e": ["d"]}
    anc = np.eye(5, dtype=bool)
    for i, name in enumerate(names):
        todo = list(parents[name])
        while todo:
            p = todo.pop()
            anc[i, names.index(p)] = True
            todo += parents[p]
    return Candidates(names, anc)


@pytest.mark.parametrize("culprit", ["a", "b", "c", "d", "e"])
def test_dag_culprit_is_found_and_checked_against_every_parent(culprit: str) -> None:
    cands = diamond()
    j = cands.ids.index(culprit)
    engine = NoisySearch(cands)
    probe: Probe = lambda i, s: 0.0 if i >= 0 and cands.anc[i, j] else 1.0  # noqa: E731
    while runs := engine.next_runs():
        for name, seed in runs:
            i = -1 if name == GOOD else 4 if name == BAD else cands.ids.index(name)
            engine.observe(name, seed, probe(i, seed))
    result = engine.result()
    assert result.first_bad == culprit
    if culprit == "d":  # a merge that broke it: both of its parents were measured good
        ran = {c.commit for c in result.commits if c.n}
        assert {"b", "c"} <= ran


def test_candidates_are_validated() -> None:
    with pytest.raises(ValueError):
        Candidates(["a", "b"], np.eye(2, dtype=bool))  # b does not descend from a
    with pytest.raises(ValueError):
        Candidates(["a", "a"], np.tril(np.ones((2, 2), dtype=bool)))
    with pytest.raises(ValueError):
        NoisySearch(Candidates.linear(ids(3)), confidence=1.0)


# --- the information measure ----------------------------------------------------------------


def test_binary_channel_information() -> None:
    assert gaussian_capacity(0.0) == pytest.approx(0.0, abs=1e-9)
    assert gaussian_capacity(12.0) == pytest.approx(1.0, abs=1e-6)
    caps = [gaussian_capacity(d) for d in (0.5, 1.0, 1.5, 3.0)]
    assert caps == sorted(caps)
    # known value: BI-AWGN at Es/N0 = 0.5625 (separation 1.5 sd) carries ~0.319 bits
    assert gaussian_capacity(1.5) == pytest.approx(0.319, abs=0.002)
    q = np.array([0.1, 0.5, 0.9])
    info = binary_information(q, np.full(3, 2.0))
    entropy = -(q * np.log2(q) + (1 - q) * np.log2(1 - q))
    assert np.all(info <= entropy + 1e-9) and info[0] == pytest.approx(info[2])


def test_capped_culprit_and_parent_hand_the_runs_to_the_endpoints() -> None:
    # a clear 3 sigma step with min_effect not far below it: the place is sure long
    # before the size is. Once culprit and parent reach their cap (the cap, or more when
    # the check needs it), every further run measures the endpoints (each sharpens a
    # level) until they are capped too, and then the commits beside the pair (0 and 3:
    # surely good and surely bad)
    cap, n = 8, 5
    handed, rescued = 0, 0
    for seed in range(12):
        rng = np.random.default_rng(seed)
        engine = NoisySearch(Candidates.linear(ids(n)), min_effect=1.8, max_runs_per_commit=cap)
        result, asked = drive(engine, step_probe(2, 3.0, rng), n)
        assert result.status != "found" or result.first_bad == ids(n)[2]
        ends = [sum(1 for i, _ in asked if i == e) for e in (-1, n - 1)]
        if result.status != "found":
            assert min(ends) >= cap
        at_pair = [k for k, (i, _) in enumerate(asked) if i in (1, 2)]
        if min(sum(1 for i, _ in asked if i == c) for c in (1, 2)) < cap:
            continue
        after = [i for i, _ in asked[at_pair[-1] + 1:]]
        assert set(after) <= {-1, 0, 3, n - 1}
        beside = [k for k, i in enumerate(after) if i in (0, 3)]
        if beside:  # only once both endpoints are capped, and then nothing else
            first = len(asked) - len(after) + beside[0]
            assert min(sum(1 for i, _ in asked[:first] if i == e) for e in (-1, n - 1)) >= cap
            assert set(after[beside[0]:]) <= {0, 3}
        handed += bool(after)
        rescued += bool(after) and result.status == "found"
    assert handed >= 2 and rescued >= 1


def test_a_hunt_cut_short_by_its_budget_is_inconclusive_not_no_regression() -> None:
    # a 3 sigma step, budgets too small to show it: leaning to "no change" after a few
    # runs is no evidence of no regression
    rng = np.random.default_rng(7)
    outcomes = []
    for max_runs in range(4, 24):
        engine = NoisySearch(Candidates.linear(ids(50)), max_runs=max_runs)
        result, _ = drive(engine, step_probe(30, 3.0, rng), 50)
        outcomes.append((result.status, result.reason, result.candidates))
    cut = [status for status, reason, _ in outcomes if reason == "run budget spent"]
    assert len(cut) >= 10
    assert set(cut) == {"inconclusive"}
    # an undecided hunt lists the likeliest commits holding 95% of the mass, oldest first
    for _, _, candidates in outcomes:
        names = [c for c, _ in candidates]
        assert names == sorted(names)
        assert len(names) == 20 or sum(p for _, p in candidates) >= 0.95


# A real CLI hunt (audit, 40 commits): loss exactly 1.0 before commit 22, N(2, 0.8) from
# it on. Its recorded runs, as (commit index, seed, loss), index 0 the good endpoint; the
# first six are git's bisection before the second seed at commit 30 showed the noise.
_TURNED_NOISY = [
    (0, 0, 1.0), (0, 1, 1.0), (39, 0, 3.1748), (19, 0, 1.0), (29, 0, 1.3156), (29, 1, 1.1256),
    (39, 1, 2.3682), (0, 2, 1.0), (39, 2, 3.4022), (34, 2, 2.889), (32, 1, 2.9182),
    (30, 0, 3.1416), (30, 1, 2.563), (30, 2, 2.596), (29, 2, 2.1235), (30, 3, 1.7732),
    (29, 3, 2.1078), (28, 0, 1.5687), (28, 1, 0.7402), (30, 4, 3.1084), (29, 4, 0.3199),
    (30, 5, 0.9487), (29, 5, 1.2229), (30, 6, 2.4667), (29, 6, 1.6479), (30, 7, 3.0782),
    (29, 7, 0.5108)]


def test_a_pooled_noise_full_of_exact_zeros_does_not_verify_a_lucky_pair() -> None:
    # Commit 30 drew eight values averaging 1.35 (true mean 2): against a noise pooled with
    # the good end's exact runs it looked good, and commit 31 was verified at 0.993. The
    # pair's own spread is the test when one end is exact and the other is not.
    known = {(i, k): v for i, k, v in _TURNED_NOISY}

    def loss(i: int, k: int) -> float:
        if (i, k) in known:
            return known[(i, k)]
        return 1.0 if i < 21 else 2.0 + 0.8 * random.Random(f"{i}-{k}").gauss(0.0, 1.0)

    names = [f"c{i}" for i in range(1, 40)]
    engine = NoisySearch(Candidates.linear(names), higher_is_better=False)
    for i, k, v in _TURNED_NOISY[:6]:
        engine.observe(GOOD if i == 0 else names[i - 1], k, v)
    while runs := engine.next_runs():
        for name, k in runs:
            i = 0 if name == GOOD else 39 if name == BAD else int(name[1:])
            engine.observe(name, k, loss(i, k))
    result = engine.result()
    assert result.status == "found" and result.first_bad == "c21"
