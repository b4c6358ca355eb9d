"""Measure bisection under noise: the engine (bisector.noisy) against baselines.

Simulates histories of N commits with a step of d sigma at a random culprit, an optional
seed-shared noise part (variance rho of a total 1), an optional linear drift, or no
regression at all, drives each method against a fake probe and prints, per cell,
accuracy and the mean / p95 number of probe runs (endpoint runs included), next to the
information bound log2(N) / C(d). Usage:

    python scripts/sim_noise.py            # full table, 200 trials a cell
    python scripts/sim_noise.py --quick    # a small subset, 30 trials a cell
    python scripts/sim_noise.py --quick --seed 5000   # the same cells on other draws
    python scripts/sim_noise.py --quick --methods engine,oracle   # next to full knowledge
    python scripts/sim_noise.py --quick --methods engine,levels   # next to unknown levels only
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bisector import noisy, step_model  # noqa: E402
from bisector.candidates import Candidates  # noqa: E402
from bisector.noisy import BAD, GOOD, NoisySearch  # noqa: E402
from bisector.step_model import binary_information, gaussian_capacity  # noqa: E402


@dataclass
class Oracle:
    """A fake probe. Commit -1 is good; culprit None means no regression."""

    n: int
    culprit: int | None
    step: float
    rho: float
    drift: float
    deterministic: bool
    rng: np.random.Generator
    runs: int = 0
    _seed_part: dict[int, float] = field(default_factory=dict)
    _own_part: dict[tuple[int, int], float] = field(default_factory=dict)

    def mean(self, i: int) -> float:
        bad = self.culprit is not None and i >= self.culprit
        return -self.step * bad - self.drift * (i + 1) / self.n

    def __call__(self, i: int, seed: int) -> float:
        self.runs += 1
        if self.deterministic:
            return self.mean(i)
        if seed not in self._seed_part:
            self._seed_part[seed] = self.rng.normal()
        if (i, seed) not in self._own_part:  # deterministic given the seed
            self._own_part[(i, seed)] = self.rng.normal()
        noise = math.sqrt(self.rho) * self._seed_part[seed]
        return self.mean(i) + noise + math.sqrt(1 - self.rho) * self._own_part[(i, seed)]


Outcome = tuple[str, int | None]  # status, first bad index


def run_engine(o: Oracle, **kw: float | None) -> Outcome:
    ids = [f"c{i}" for i in range(o.n)]
    engine = NoisySearch(Candidates.linear(ids), **kw)  # type: ignore[arg-type]
    while runs := engine.next_runs():
        for name, seed in runs:
            i = -1 if name == GOOD else o.n - 1 if name == BAD else int(name[1:])
            engine.observe(name, seed, o(i, seed))
    r = engine.result()
    return r.status, (int(r.first_bad[1:]) if r.first_bad else None)


def run_sprt_halving(o: Oracle, confidence: float = 0.99, cap: int = 30) -> Outcome:
    """Method B: binary search, each midpoint decided by a Wald SPRT against the endpoint
    levels (measured with 4 paired runs each), per-step error (1 - confidence) / steps."""
    g = [o(-1, k) for k in range(4)]
    b = [o(o.n - 1, k) for k in range(4)]
    diff = float(np.mean(g) - np.mean(b))
    if diff <= 0:
        return "no-regression", None
    var = float(np.var(g, ddof=1) + np.var(b, ddof=1)) / 2
    var = max(var, 1e-12 * diff**2)
    mid = (np.mean(g) + np.mean(b)) / 2
    alpha = (1 - confidence) / max(1, math.ceil(math.log2(o.n)))
    bound = math.log((1 - alpha) / alpha)
    lo, hi = -1, o.n - 1  # lo good, hi bad
    while hi - lo > 1:
        m = (lo + hi) // 2
        llr, k = 0.0, 0
        while abs(llr) < bound and k < cap:
            llr += float((mid - o(m, k)) * diff / var)  # > 0 favours bad
            k += 1
        if llr > 0:
            hi = m
        else:
            lo = m
    return "found", hi


def run_plain(o: Oracle, repeats: int) -> Outcome:
    """Baseline: bisection with `repeats` runs averaged per step, against the endpoints'
    midpoint (same number of runs there)."""
    g = np.mean([o(-1, k) for k in range(repeats)])
    b = np.mean([o(o.n - 1, k) for k in range(repeats)])
    if g <= b:
        return "no-regression", None
    lo, hi = -1, o.n - 1
    while hi - lo > 1:
        m = (lo + hi) // 2
        if np.mean([o(m, k) for k in range(repeats)]) < (g + b) / 2:
            hi = m
        else:
            lo = m
    return "found", hi


def run_oracle(o: Oracle, confidence: float = 0.99) -> Outcome:
    """Reference, not a method: probabilistic bisection that is told the levels, the noise
    (seed effects included) and that a step exists; it picks the most informative commit
    and stops at P(location) >= confidence. What no knowledge of the levels costs is the
    gap between this and the engine."""
    n, d = o.n, o.step / math.sqrt(1 - o.rho)
    logp = np.zeros(n)
    seed_part = o._seed_part
    while True:
        p = np.exp(logp - logp.max())
        p /= p.sum()
        if p.max() >= confidence:
            return "found", int(np.argmax(p))
        q = np.cumsum(p)[: n - 1]  # P(commit c is bad)
        c = int(np.argmax(binary_information(q, np.full(n - 1, d))))
        seed = o.runs
        y = o(c, seed) - math.sqrt(o.rho) * seed_part[seed] - o.mean(-1)
        z = y / math.sqrt(1 - o.rho)
        bad = np.arange(n) <= c  # hypotheses under which c is bad
        logp += np.where(bad, -((z + d) ** 2) / 2, -(z**2) / 2)


def run_levels(o: Oracle, confidence: float = 0.99, per_end: int = 3) -> Outcome:
    """Reference, not a method: a step exists and runs are independent, but the two levels
    and the noise are unknown (flat priors, Jeffreys sigma: closed-form evidence per
    culprit). It takes `per_end` runs at each endpoint, then the run that tells most about
    the culprit (the mixture of each hypothesis' Student-t prediction), and stops at
    P(location) >= confidence. The gap from the oracle is what unknown levels cost a
    greedy design; the gap to the engine is what the rest (no-regression, drift, seed
    share, the direct check) costs."""
    n = o.n
    pos: list[int] = []
    ys: list[float] = []
    for k in range(per_end):
        for i in (-1, n - 1):
            pos.append(i)
            ys.append(o(i, k))
    while True:
        order = np.argsort(pos, kind="stable")
        p, y = np.array(pos)[order], np.array(ys)[order]
        m = y.size
        s1, s2 = np.append(0.0, np.cumsum(y)), np.append(0.0, np.cumsum(y * y))
        ng = np.searchsorted(p, np.arange(n), side="left")  # runs good under culprit j
        nb = m - ng
        ok = (ng > 0) & (nb > 0)
        g1, g2 = s1[ng], s2[ng]
        b1, b2 = s1[-1] - g1, s2[-1] - g2
        a, b = np.maximum(ng, 1), np.maximum(nb, 1)
        rss = np.maximum(g2 - g1**2 / a + b2 - b1**2 / b, 1e-12)
        logp = np.where(ok, -0.5 * np.log(a * b) - 0.5 * (m - 2) * np.log(rss), -np.inf)
        post = np.exp(logp - logp.max())
        post /= post.sum()
        if post.max() >= confidence or m >= 400:
            return "found", int(np.argmax(post))
        c = _levels_pick(post, g1 / a, b1 / b, rss / (m - 2), a, b, m - 2)
        pos.append(c)
        ys.append(o(c, len(ys)))


def _levels_pick(post: np.ndarray, mg: np.ndarray, mb: np.ndarray, s2: np.ndarray,
                 ng: np.ndarray, nb: np.ndarray, df: int) -> int:
    """The commit whose next run has the most mutual information with the culprit."""
    from scipy import stats

    n = post.size
    q = np.cumsum(post)  # P(commit c is bad) = P(culprit <= c)
    cand = np.flatnonzero((q > 1e-6) & (q < 1 - 1e-6))
    live = post > 1e-9
    grid = np.linspace(min(mg[live].min(), mb[live].min()) - 5 * np.sqrt(s2[live].max()),
                       max(mg[live].max(), mb[live].max()) + 5 * np.sqrt(s2[live].max()), 160)
    dy = grid[1] - grid[0]
    scale_g = np.sqrt(s2[live] * (1 + 1 / ng[live]))[:, None]  # Student-t predictions
    scale_b = np.sqrt(s2[live] * (1 + 1 / nb[live]))[:, None]
    pg = stats.t.pdf(grid[None, :], df, mg[live, None], scale_g)
    pb = stats.t.pdf(grid[None, :], df, mb[live, None], scale_b)
    hg = -(pg * np.log(np.maximum(pg, 1e-300))).sum(1) * dy
    hb = -(pb * np.log(np.maximum(pb, 1e-300))).sum(1) * dy
    w, j = post[live], np.flatnonzero(live)
    bad = j[None, :] <= cand[:, None]  # (C, J): culprit j makes candidate c bad
    mix = (w * ~bad) @ pg + (w * bad) @ pb
    h_mix = -(mix * np.log(np.maximum(mix, 1e-300))).sum(1) * dy
    info = h_mix - ((w * ~bad) @ hg + (w * bad) @ hb)
    return int(cand[np.argmax(info)]) if cand.size else n - 1


@dataclass(frozen=True)
class Cell:
    name: str
    n: int
    step: float = 1.5
    rho: float = 0.0
    drift: float = 0.0
    regression: bool = True
    deterministic: bool = False
    min_effect: float | None = None

    def bound(self) -> float:
        if not self.regression or self.deterministic:
            return math.log2(self.n)
        return math.log2(self.n) / gaussian_capacity(self.step / math.sqrt(1 - self.rho))


METHODS: dict[str, Callable[[Oracle, Cell], Outcome]] = {
    "engine": lambda o, c: run_engine(o, min_effect=c.min_effect, max_runs=200),
    "sprt-halving": lambda o, c: run_sprt_halving(o),
    "plain-1": lambda o, c: run_plain(o, 1),
    "plain-5": lambda o, c: run_plain(o, 5),
    "oracle": lambda o, c: run_oracle(o),
    "levels": lambda o, c: run_levels(o),
}


def right(cell: Cell, culprit: int | None, outcome: Outcome) -> bool:
    status, first_bad = outcome
    if culprit is None:
        return status in ("no-regression", "inconclusive") if cell.drift else (
            status == "no-regression")
    return status == "found" and first_bad == culprit


def measure(cell: Cell, method: str, trials: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    runs, hits, statuses = [], 0, Counter[str]()
    for _ in range(trials):
        culprit = int(rng.integers(cell.n)) if cell.regression else None
        o = Oracle(cell.n, culprit, cell.step, cell.rho, cell.drift, cell.deterministic, rng)
        outcome = METHODS[method](o, cell)
        runs.append(o.runs)
        hits += right(cell, culprit, outcome)
        statuses[outcome[0]] += 1
    st = " ".join(f"{k}:{v}" for k, v in sorted(statuses.items()))
    return (f"{cell.name:<28} {method:<13} {100 * hits / trials:6.1f}% {np.mean(runs):7.1f} "
            f"{np.percentile(runs, 95):6.0f} {cell.bound():7.1f}  {st}")


def cells(quick: bool) -> list[Cell]:
    sizes = (300,) if quick else (100, 300, 1000)
    out = []
    for n in sizes:
        out += [Cell(f"N={n} 1.5sd indep", n), Cell(f"N={n} 1.5sd rho=.7", n, rho=0.7),
                Cell(f"N={n} 3sd indep", n, step=3.0),
                Cell(f"N={n} deterministic", n, deterministic=True)]
    out += [Cell("N=300 no regression", 300, regression=False),
            Cell("N=300 drift 1sd, no step", 300, regression=False, drift=1.0),
            Cell("N=300 1.5sd + drift 1sd", 300, drift=1.0)]
    if not quick:
        out += [Cell("N=300 3sd rho=.7", 300, step=3.0, rho=0.7),
                Cell("N=300 no regr rho=.7", 300, regression=False, rho=0.7),
                Cell("N=300 no regr min_eff=.5", 300, regression=False, min_effect=0.5)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--trials", type=int)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--only", default="", help="run the cells whose name contains this")
    ap.add_argument("--seed", type=int, default=1000, help="random seed of the first cell")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="override an engine constant (tuning experiments), e.g. _START_SEARCH=0.5")
    args = ap.parse_args()
    for item in args.set:
        name, value = item.split("=")
        for module in (noisy, step_model):  # both, for a name one imports from the other
            if hasattr(module, name):
                setattr(module, name, float(value))
    trials = args.trials or (30 if args.quick else 200)
    print(f"{'cell':<28} {'method':<13} {'right':>7} {'mean':>7} {'p95':>6} {'bound':>7}  statuses")
    start = time.time()
    for i, cell in enumerate(cells(args.quick)):
        if args.only not in cell.name:
            continue
        for method in args.methods.split(","):
            skip = cell.deterministic or cell.drift or not cell.regression
            if method in ("oracle", "levels") and skip:
                continue
            if method != "engine" and (cell.drift or not cell.regression or cell.min_effect):
                if method != "sprt-halving":
                    continue
            print(measure(cell, method, trials, seed=args.seed + i), flush=True)
    print(f"# {trials} trials a cell, {time.time() - start:.0f} s;"
          " bound = log2(N) / C(d / sqrt(1 - rho)) runs")


if __name__ == "__main__":
    main()
