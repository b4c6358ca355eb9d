"""Decision engine for bisecting a noisy metric: which run to take next, and when to stop.

Owns the statistics of the search: the posterior over the culprit, the choice of the next
(commit, seed) run, culprit verification and the final status. Pure logic: it never runs a
probe, touches git, files, the clock or a random source; the caller feeds it observations
(in any order) and asks it what to run next.

Method: probabilistic bisection over the DAG with an exact Bayesian step model
--------------------------------------------------------------------------------
* Model (bisector.step_model). Each run is a level, a step at the culprit, an optional
  slow drift, a seed effect shared by every run with that seed and its own noise; the
  hypotheses are "culprit = j" for every candidate, "no change" and "drift only", each
  with a closed-form marginal likelihood. Nothing is plugged in: levels, noise, seed
  share and drift are learnt from all runs. `confidence` is the posterior
  P(culprit = j | a regression); P(a regression > min_effect) is reported beside it
  (`p_regression`), and found needs both at the target. (The joint probability held
  hunts whose culprit was long settled while the step's size crept past min_effect.)
* Next run: the commit whose next seed tells most about the culprit (mutual information
  of a binary-input Gaussian channel; a seed already run at many commits has a known
  seed effect, so it is worth more). Every seed a commit gets was run at both endpoints,
  so each run is paired with the levels; inside the range the seeds rotate (the least used
  first) so no seed's luck is confounded with the step, the culprit check completes
  pairs (the parent's seeds at the culprit and back), and a (commit, seed) pair is never
  asked twice.
* Endpoints first, in seed pairs, until P(regression | endpoints) >= 0.9, and always at
  least 20% of the runs: every classification is relative to their levels. No-regression
  when P(regression) <= 1 - confidence (after 8 runs at each endpoint), or when the
  endpoints reach the per-commit cap and they, or all the runs, lean to no change; capped
  endpoints that lean to a change (a step near min_effect) hand over to the search. While
  the search's runs no longer lean to a regression, runs go to the endpoints: only they can
  wear down a lucky difference between them. With P(no change)
  = 1/2 a priori, a false "regression" under no change is bounded by 1 - confidence (the
  posterior odds are a martingale).
* Found needs both posteriors >= confidence and a direct check: the paired differences
  parent - culprit (same seeds) must favour "a step of the estimated size" over "no
  change" by a likelihood ratio >= confidence / (1 - confidence), for every parent. A
  slow drift makes neighbours equal, so it fails this check and the search goes on; the
  budget then ends it as inconclusive, never as a culprit. Culprit and parent at their
  cap hand the runs to the endpoints: what is unsure then is often the step's size
  (4 of 50 real-CLI hunts at 1.5 sd had stopped there; one more was found this way);
  with the endpoints capped too, to the commits beside the culprit that are surely good
  or bad (1.5 sd, 200 simulated hunts: 96.5% -> 99.0% right for 0.4 more runs).
* Small steps get the runs they need. The per-commit cap (30) is too few for a 1 sd
  step: its direct check needs ~18 pairs on average, and 30 runs at each endpoint leave
  P(step > min_effect) a coin flip. So, once a regression is likely, the culprit and its
  parents may take 3x the pairs an average check needs at the estimated size (within a
  quarter of the budget), and so may any commit when none under the cap tells anything
  more; endpoints capped with P(regression) between 0.1 and 0.5 take up to an eighth of
  the budget before the answer. (In process, bench_noise's histories, min_effect half the
  step, 50 hunts a cell: a 1 sd step at N = 100, 300, 1000 went from 52%, 64%, 56% right
  (the rest "inconclusive" with budget left, or "no-regression") to 98%, 94%, 96%, for 2
  to 12 more runs; 1 sd + a 1 sd drift, 200 hunts: 68.5% -> 98.5%, wrong culprits 3 -> 0;
  1.5 sd + drift: 96.5% -> 99.5%, 3 -> 1; 1.5 sd, 100 hunts: 97% -> 100%, 74.3 -> 71.7
  runs; 3 sd, rho 0.7 and no regression unchanged to the run.)
* Failed runs (retries spent) are left out for their seed only: a training run may
  diverge on one seed. Seeds that failed at an endpoint are never used inside the range,
  nor paired with. A commit is untestable once it has failed on two seeds and on more
  than twice as many as it measured (an endpoint: three, three times); its values still
  count.
  (10% of (commit, seed) runs failing, 3 sd, 30 hunts: 9 right before, 28 after, none
  wrong; one failure at an endpoint had ended the hunt.)
* Outliers (`outliers.outliers`): a run more than 12 robust sd, and half the step, from
  its commit's median (3 runs or more there), or at a commit with fewer outside both
  endpoints' levels by as much, is set aside: a training that diverged yet reported a
  metric. The Gaussian model read one as a level or as noise many times larger.
  bench_noise --fail 0.05 --diverge 0.03 (30 sd low), 300 commits, 30 hunts: 3 sd 100% at
  32.8 runs, 1.5 sd 93.3% at 94.5; before failed seeds were left out and such runs set
  aside, 13.3% and 0% (inconclusive, exit 4, "no-regression"). Diverged runs alone (2% at
  1.5 sd, 5% at 3 sd, scratch sims): 7 and 9 of 30 right before (22 and 19 "no-
  regression"), 29 and 30 after. No Gaussian run was set aside in 160 hunts (at 6 sd).
* Deterministic probe (seeds 0 and 1 give the same value at good): one run per commit,
  classic bisection against the midpoint of the endpoints; the culprit's step must be
  >= min_effect, or >= half the endpoint difference without it (so drift is refused).
  The first inner value neither endpoint gave, and bad before "no regression", get a
  second seed: a probe exact only at good is searched as noisy. The noise model is equal
  at every commit; with one endpoint exact and the other not, the direct check also
  uses the pair's own spread.

Why this method (scripts/sim_noise.py --quick --trials 60; right = the exact culprit found)
--------------------------------------------------------------------------------------
N=300, 60 trials a cell, two seed sets (1000 / 5000); baselines from the 100-trial run
                       this engine               SPRT + halving  plain 1 run  plain 5 runs
  1.5 sd, independent  98% / 66 runs, 97% / 77   75% / 90        6% /  9     49% / 52
  1.5 sd, rho = 0.7   100% / 33,     100% / 35   93% / 66       27% / 10     95% / 52
  3 sd, independent   100% / 27,     100% / 26   95% / 28       42% / 10     97% / 51
  deterministic       100% / 11.3                100% / 16     100% / 10    100% / 51
  no regression        98% / 65, 98% / 62 (1 inconclusive each)  50% (false culprits)
  drift 1 sd, no step 100% / 196, 100% / 193 (inconclusive or no-regression, no culprit)
  1.5 sd + drift 1 sd 100% / 80,  97% / 81 (2 inconclusive)
No cell gave a wrong culprit. A 60-trial cell moves by ~4 points and ~5 runs between
seed sets: a change is kept only if it helps on both. Information bound log2(N)/C:
25.8 runs at 1.5 sd, 10.8 at 3 sd, 11.8 with rho = 0.7; an exact-knowledge probabilistic
bisection (levels, noise and the step's existence given; --methods oracle) needs ~31
runs at 1.5 sd for 97-99%.
Per-commit SPRT with halving cannot take back a wrong turn, so its errors compound;
the posterior search revisits. What the gap to the bound is made of at 1.5 sd: with
the levels known (40 runs at each endpoint) the search reaches P(location) = 0.99 after
~37 runs (the oracle: 30); the endpoints take ~20 runs; the direct check and
P(regression) >= confidence arrive a few runs after the location. Unknown levels alone
cost a greedy design ~28 runs: a step that surely exists, independent runs, three runs
per endpoint and the exact two-level posterior with an information-gain pick (--methods
levels) need 58-60 runs for 98-100%. Runs bunch at the culprit and its parent, and each
then also defines the level it is judged against; one lucky endpoint run can hold the
search in a wrong stretch for 20 runs. The same information-gain pick inside this engine
took as many runs as the channel pick described above (80 on 60 hunts), and in the
reference a two-step lookahead (the 6 best commits and both endpoints) took more (67
runs against 60 on 40 hunts). What holds the last 10-20% of the mass there is spread far
from the culprit: single steps that a larger noise makes fit almost as well, which only
more runs on both sides wear down.
Kept (helped on both seed sets): rotating endpoint seeds inside the range (a lucky seed-0
draw at the endpoints had been confounded with the step: hunts stuck for 150 runs) and
steps with and without a drift beside them (a drift term in every step model cost ~9
runs). Later, on the benchmark's own histories in process (scratch replica of
bench_noise, 40 hunts, min_effect = step / 2): location and regression judged apart
instead of jointly (1.5 sd: 78 -> 74 runs, 37 -> 39 of 40 right; 3 sd: 27.8 -> 26.6),
then the endpoints handing over at half min_effect (3 sd: -1 run, 1.5 sd: 74 -> 70,
measured with three verification pairs, since put back to four: see below). Then runs
to the endpoints while P(regression) < 1/2, and no-regression at capped endpoints when all
the runs lean to no change (a no-regression history had searched for 370 runs on a 2-se
endpoint difference: now 226). Replica, 50 hunts: no regression 49.5 -> 44.8 runs (p95 98
-> 70; another seed set 47.3 -> 46.1), 1.5 sd 76.1 -> 75.1, 1.5 sd + drift 69.1 -> 68.2,
3 sd 26.1 -> 26.3, rho 0.7 35.1 -> 35.3; the sim's drift-only and no-min_effect cells alike.
Tried, no gain or unsafe: two or three verification pairs instead of four (a wrong culprit
at 3 sd, and again under a drift in a later retry), "found" on the location given a step
plus the direct check instead of P(regression) (no fewer runs; before the endpoints handed
over at half min_effect and the two were judged apart), other endpoint shares (0.05-0.2) and
hand-over points (0.7-0.99), verify from 0.7-0.97, a narrower step-prior grid, P(change)
from the endpoints alone, and a search instead of "no-regression" when capped endpoints
still lean to a change (wrong "no-regression"s become "inconclusive", +10 runs), and P(no
change) = 0.2 a priori (3 sd: 28.7 -> 26.7 runs, rho 0.7: 34.9 -> 33.4, but 8% of no-
regression hunts without --min-effect ended inconclusive instead of 2%).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import special

from .candidates import Candidates, culprit_classes, witnesses
from .decide import gives_up
from .outliers import outliers
from .step_model import (
    PRIOR_NONE,
    RHO_GRID,
    BoolArray,
    FloatArray,
    IntArray,
    binary_information,
    gaussian_capacity,  # noqa: F401  (re-exported for the benchmark scripts)
    posterior,
    unique_columns,
)
from .summary import left_out

GOOD = "<good>"  # the good endpoint: not in Candidates.ids
BAD = "<bad>"  # the bad endpoint, Candidates.ids[-1]

_PRIOR_DRIFT = 0.05
_START_SEARCH = 0.9  # P(regression) at which the endpoints hand over to the search
_MIN_PAIRS = 2
# "No regression" rests on the endpoints' spread and on the seed share: with four seeds a
# chance correlation between good and bad looks like a high share, and a real 1.5 sigma
# step then looks impossible (seen: 2 in 60 hunts with --min-effect at half the step).
# 8 runs each still let unlucky endpoints call a real 1.5 sigma step "no change" (3 of
# 150 hunts, all at 8-9 runs), 12 too (2 of 50, bad endpoints 3 se lucky); 16 cost the
# no-regression hunts 31 -> 42 runs (bench histories) and no other hunt a run.
_MIN_RUNS_FOR_NONE = 16
_CAPPED_SEARCH = 0.5  # P(regression | endpoints) at their cap above which the search runs
_END_SHARE = 0.2
_HEAVY_RUNS = 4
_MIN_VERIFY_PAIRS = 4
# "No regression" also needs P(step > min_effect | a change) this low: the evidence for "no
# change" grows with the step prior's spread, so a 1.5 sd step with unlucky endpoints could
# otherwise be called no change after 8 runs each (3 of 90 real hunts)
_NONE_GIVEN_CHANGE = 0.05
# the endpoints hand over once a change of half min_effect is likely: the search runs
# measure the step too (3 sd: 1 run fewer on average, no accuracy lost)
_START_EFFECT = 0.5
_VERIFY_FROM = 0.9  # P(location) at which runs go to the culprit and its parents
# a small step needs more runs than the cap at the culprit and its parents: once a
# regression is likely they may take this many times the pairs an average direct check
# needs at the step's estimated size (within a quarter of the budget)
_CHECK_ROOM = 3.0
# capped endpoints this unsure of a regression (P between this and _CAPPED_SEARCH) take
# more runs, up to an eighth of the budget, before "no-regression"
_UNSURE_AT_CAP = 0.1
_MAX_CANDIDATES = 20  # commits an undecided result lists


@dataclass(frozen=True)
class CommitSummary:
    commit: str
    n: int
    mean: float | None
    p_bad: float
    decision: str  # good | bad | unknown | untestable
    reason: str


@dataclass(frozen=True)
class EndpointSummary:
    commit: str
    mean: float | None
    n: int


@dataclass(frozen=True)
class SearchResult:
    status: str  # found | ambiguous | no-regression | inconclusive
    done: bool  # False: a provisional answer, more runs would help
    first_bad: str | None
    confidence: float  # P(first_bad is the culprit | a regression), or of the candidates
    candidates: tuple[tuple[str, float], ...]
    good: EndpointSummary
    bad: EndpointSummary
    p_regression: float
    effect: float | None  # bad minus good, metric units, under the top hypothesis
    verification: float | None  # direct parent-vs-culprit check, P(step | paired runs)
    runs: int
    reason: str
    commits: tuple[CommitSummary, ...] = field(default=())
    # undecided: the fewest consecutive commits (history order) holding 95% of the mass,
    # as (first, last, how many, their mass)
    span: tuple[str, str, int, float] | None = None


@dataclass(frozen=True)
class _Analysis:
    """Everything the engine concludes from the observations so far (pending runs aside)."""

    phase: str  # check | recheck | endpoints | search | verify | levels | done
    status: str
    reason: str
    post: FloatArray  # (N,) P(culprit = j | a regression)
    q: FloatArray  # (N,) P(commit bad | a step)
    members: list[int]  # top class of hypotheses that no testable commit tells apart
    p_reg: float = 0.0
    top_mass: float = 0.0
    witnesses: tuple[int, list[int]] | None = None  # must-be-bad commit, must-be-good parents
    verification: float | None = None
    effect: float | None = None  # regression size, direction-normalized metric units
    noise: tuple[float, float, float] = (1.0, 1.0, 0.0)  # step, sigma_e^2, sigma_s^2
    rho: float = 0.0  # seed share of the noise; 1.0 marks a deterministic probe
    pair_cap: int = 0  # runs the culprit and its parents may take (the cap or more)
    end_cap: int = 0  # runs each endpoint may take (the cap or more)


class NoisySearch:
    """Bisect good..bad under noise: ask `next_runs`, report with `observe`, read `result`.

    Runs are (commit, seed); repeat k uses seed k at every commit. GOOD and BAD name the
    endpoints (BAD is also ids[-1]). An empty `next_runs` while `result().done` is False
    means: wait for the pending runs.
    """

    def __init__(
        self,
        candidates: Candidates,
        *,
        higher_is_better: bool = True,
        confidence: float = 0.99,
        min_effect: float | None = None,
        max_runs: int = 200,
        max_runs_per_commit: int = 30,
    ) -> None:
        if not 0.5 < confidence < 1.0:
            raise ValueError("confidence must be in (0.5, 1)")
        if max_runs_per_commit < 2:
            raise ValueError("max_runs_per_commit must be at least 2")
        self.candidates = candidates
        self.confidence = confidence
        self.min_effect = min_effect
        self.max_runs = max_runs
        self.cap = max_runs_per_commit
        self._n = len(candidates.ids)
        self._sign = 1.0 if higher_is_better else -1.0
        self._index = {cid: i for i, cid in enumerate(candidates.ids)}
        self._index[GOOD], self._index[BAD] = -1, self._n - 1
        self._ancf = candidates.anc.astype(float)
        self._position = candidates.anc.sum(1) / self._n
        self._obs: list[tuple[int, int, float]] = []
        self._used: dict[int, set[int]] = {}  # seeds observed or pending, per commit
        self._inside_uses: Counter[int] = Counter()  # per seed, commits inside the range
        self._pending: set[tuple[int, int]] = set()
        self._beside = 0  # runs asked beside a capped culprit, to size its step
        self._untestable = np.zeros(self._n, dtype=bool)
        self._failed: dict[int, set[int]] = {}  # seeds whose run failed, per commit
        self._endpoint_failed = False
        self._exhausted = False  # asked for runs, had none to give and none pending
        self._cache: _Analysis | None = None
        # (for how many observations, the outliers among them, the others)
        self._screened: tuple[int, frozenset[int], list[tuple[int, int, float]]] = (
            0, frozenset(), [])

    # --- the caller's side -------------------------------------------------------------

    def observe(self, commit: str, seed: int, value: float) -> None:
        if not math.isfinite(value):
            raise ValueError(f"non-finite value {value!r} for {commit} seed {seed}")
        i = self._idx(commit)
        self._obs.append((i, int(seed), self._sign * float(value)))
        self._use(i, int(seed))
        self._pending.discard((i, int(seed)))
        self._cache, self._exhausted = None, False

    def observe_untestable(self, commit: str) -> None:
        i = self._idx(commit)
        if i in (-1, self._n - 1):
            self._endpoint_failed = True
        else:
            self._untestable[i] = True
        self._pending = {p for p in self._pending if p[0] != i}
        self._cache, self._exhausted = None, False

    def observe_failed(self, commit: str, seed: int) -> None:
        """A run that failed (retries spent): that seed is left out at the commit.

        A training run that diverges on some seeds still measures its commit on the
        others: the commit turns untestable only as `decide.gives_up` says (one diverging
        seed had ended hunts inconclusive or ambiguous).
        """
        i = self._idx(commit)
        failed = self._failed.setdefault(i, set())
        failed.add(int(seed))
        self._use(i, int(seed))
        self._pending.discard((i, int(seed)))
        if gives_up(len(failed), len(self._values(i)), endpoint=i in (-1, self._n - 1)):
            self.observe_untestable(commit)
        self._cache, self._exhausted = None, False

    def set_aside_runs(self) -> list[tuple[str, int, float]]:
        """(commit, seed, value) of the runs the model leaves out as outliers."""
        return [(self._name(i), k, self._sign * v)
                for i, k, v in (self._obs[j] for j in sorted(self._set_aside()))]

    @property
    def endpoint_failed(self) -> bool:
        return self._endpoint_failed

    def failed_seeds(self, commit: str) -> frozenset[int]:
        return frozenset(self._failed.get(self._idx(commit), ()))

    def next_runs(self, n: int = 1) -> list[tuple[str, int]]:
        """Up to n distinct runs worth taking now (they may run in parallel)."""
        a = self._analysis()
        runs: list[tuple[str, int]] = []
        while len(runs) < n and a.phase != "done":
            if len(self._obs) + len(self._pending) >= self.max_runs:
                break
            i = self._pick(a, len(runs), n)
            if i is None:
                if not runs and not self._pending:
                    self._exhausted, self._cache = True, None
                break
            seed = self._seed_for(i, a)
            self._pending.add((i, seed))
            self._use(i, seed)
            runs.append((self._name(i), seed))
        return runs

    def status(self) -> str:
        return self._analysis().status

    def result(self) -> SearchResult:
        a = self._analysis()
        if a.status == "ambiguous":
            top = a.members
        else:  # the likeliest commits holding 95% of the mass (at most 20), oldest first
            order = np.argsort(-a.post, kind="stable")
            k = int(np.searchsorted(np.cumsum(a.post[order]), 0.95)) + 1
            top = sorted(int(j) for j in order[:min(k, _MAX_CANDIDATES)])
        cands = tuple((self.candidates.ids[j], float(a.post[j])) for j in top if a.post[j] > 0)
        found = a.status == "found"
        effect = None if a.effect is None else -self._sign * a.effect
        return SearchResult(
            status=a.status,
            done=a.phase == "done",
            first_bad=self.candidates.ids[a.members[0]] if found else None,
            confidence=a.top_mass,
            candidates=cands,
            good=self._endpoint(-1, GOOD),
            bad=self._endpoint(self._n - 1, self.candidates.ids[-1]),
            p_regression=a.p_reg,
            effect=effect,
            verification=a.verification,
            runs=len(self._obs),
            reason=a.reason,
            commits=self._summaries(a),
            span=None if found or a.status == "no-regression" else self._span(a.post),
        )

    def _span(self, post: FloatArray) -> tuple[str, str, int, float] | None:
        """The shortest window of consecutive candidates holding 95% of the mass."""
        total = float(post.sum())
        if total <= 0:
            return None
        cum = np.concatenate([[0.0], np.cumsum(post / total)])
        # for each start i, the first end j with cum[j] - cum[i] >= 0.95 (j exclusive)
        ends = np.searchsorted(cum, cum[:-1] + 0.95 - 1e-12)
        ok = ends <= post.size
        if not ok.any():
            return None
        starts = np.flatnonzero(ok)
        i = int(starts[np.argmin(ends[ok] - starts)])
        j = int(ends[i])
        ids = self.candidates.ids
        return ids[i], ids[j - 1], j - i, float(cum[j] - cum[i])

    # --- bookkeeping -------------------------------------------------------------------

    def _idx(self, commit: str) -> int:
        if commit not in self._index:
            raise KeyError(f"unknown commit {commit!r}")
        return self._index[commit]

    def _name(self, i: int) -> str:
        return GOOD if i == -1 else BAD if i == self._n - 1 else self.candidates.ids[i]

    def _next_seed(self, i: int) -> int:
        used = self._used.get(i, set())
        k = 0
        while k in used:
            k += 1
        return k

    def _seed_for(self, i: int, a: _Analysis) -> int:
        """The seed of the next run at commit i.

        Endpoints and a deterministic probe take the lowest free seed. Elsewhere a run
        first completes a pair with the other side of the culprit check, else takes the
        endpoint seed least used inside the range: if every new commit took seed 0, a
        lucky seed-0 draw at the endpoints would be confounded with the step for good
        (seen: hunts stuck for 150 runs at 1.5 sigma).
        """
        used = self._used.get(i, set())  # i == -2 asks for a commit not run yet
        if i in (-1, self._n - 1) or a.rho >= 1.0:
            return self._next_seed(i)
        if a.witnesses is not None:
            bw, gws = a.witnesses
            side = gws if i == bw else [bw] if i in gws else []
            partner = set().union(*(self._live_seeds(w) for w in side)) - used
            if partner:
                return min(partner)
        free = (self._live_seeds(-1) & self._live_seeds(self._n - 1)) - used
        if not free:
            return self._next_seed(i)
        return min(free, key=lambda k: (self._inside_uses[k], k))

    def _live_seeds(self, i: int) -> set[int]:
        """Seeds run or running at commit i that did not fail there: worth pairing with."""
        return self._used.get(i, set()) - self._failed.get(i, set())

    def _use(self, i: int, seed: int) -> None:
        seeds = self._used.setdefault(i, set())
        if seed not in seeds:
            seeds.add(seed)
            if 0 <= i < self._n - 1:
                self._inside_uses[seed] += 1

    def _count(self, i: int) -> int:
        return len(self._used.get(i, ()))

    def _classes(self) -> IntArray:
        observed = np.zeros(self._n, dtype=bool)
        observed[[i for i, _, _ in self._obs if i >= 0]] = True
        return culprit_classes(self.candidates.anc, self._untestable, observed)

    def _witnesses(self, members: list[int]) -> tuple[int, list[int]]:
        return witnesses(self.candidates.anc, self._untestable, members)

    def _values(self, i: int, *, kept: bool = False) -> dict[int, float]:
        """Mean value per seed at commit i (direction-normalized); `kept`: outliers aside."""
        acc: dict[int, list[float]] = {}
        for j, k, v in self._kept() if kept else self._obs:
            if j == i:
                acc.setdefault(k, []).append(v)
        return {k: float(np.mean(v)) for k, v in acc.items()}

    def _screen(self) -> tuple[int, frozenset[int], list[tuple[int, int, float]]]:
        if self._screened[0] != len(self._obs):
            aside = outliers(self._obs, self._n - 1)
            self._screened = (len(self._obs), aside,
                              [o for k, o in enumerate(self._obs) if k not in aside])
        return self._screened

    def _set_aside(self) -> frozenset[int]:
        """Positions in _obs of runs far from their own commit's other runs."""
        return self._screen()[1]

    def _kept(self) -> list[tuple[int, int, float]]:
        """The runs the model reads: _obs without the outliers."""
        return self._screen()[2]

    def _endpoint(self, i: int, name: str) -> EndpointSummary:
        vals = [v for j, _, v in self._obs if j == i]
        return EndpointSummary(name, self._sign * float(np.mean(vals)) if vals else None, len(vals))

    def _summaries(self, a: _Analysis) -> tuple[CommitSummary, ...]:
        out = []
        bw, gws = a.witnesses if a.witnesses else (None, [])
        det = a.rho >= 1.0
        by_commit: dict[int, list[float]] = {}
        for j, _, v in self._obs:
            by_commit.setdefault(j, []).append(v)
        aside = Counter(self._obs[k][0] for k in self._set_aside())
        for i, cid in enumerate(self.candidates.ids):
            vals = by_commit.get(i, [])
            n, q = len(vals), float(a.q[i])
            sure = q >= self.confidence or q <= 1 - self.confidence
            decision = "bad" if q >= self.confidence else "good" if sure else "unknown"
            if self._untestable[i] and n == 0:
                decision, reason = "untestable", "untestable"
            elif det:
                reason = f"deterministic probe: {n} run" if n else "not run"
            elif n == 0:
                reason = "not measured yet" if i in self._failed else "not run"
            elif i == bw or i in gws:
                capped = n >= a.pair_cap
                reason = f"verification pair: {n} runs" + (" (cap reached)" if capped else "")
            elif n > self.cap:  # nothing under the cap told more
                reason = f"{n} runs, past the cap of {self.cap}: a small change needs more"
            elif n == self.cap:
                reason = f"cap reached: {n} runs"
            elif sure:
                how = ("deterministic given seed" if a.rho >= 0.98 else
                       "paired seeds" if a.rho >= 0.5 else "independent runs")
                reason = f"{how}: decided after {n} run{'s' if n > 1 else ''}"
            else:
                reason = f"undecided after {n} run{'s' if n > 1 else ''}"
            if self._failed.get(i) and n:
                reason += f"; {left_out(self._failed[i])}"
            if aside.get(i):
                reason += (f"; {aside[i]} run{'s' if aside[i] > 1 else ''} set aside (far from "
                           "the commit's other runs: a diverged training?)")
            if self._untestable[i] and n:
                reason += "; no more runs here (it fails more than it measures)"
            mean = self._sign * float(np.mean(vals)) if vals else None
            out.append(CommitSummary(cid, n, mean, q, decision, reason))
        return tuple(out)

    # --- analysis ----------------------------------------------------------------------

    def _analysis(self) -> _Analysis:
        if self._cache is None:
            self._cache = self._analyse()
        return self._cache

    def _analyse(self) -> _Analysis:
        n = self._n
        good = [v for i, _, v in self._obs if i == -1]
        bad = [v for i, _, v in self._obs if i == n - 1]
        start = _Analysis("check", "inconclusive", "measuring the endpoints",
                          np.zeros(n), np.zeros(n), [n - 1], pair_cap=self.cap, end_cap=self.cap)
        if self._endpoint_failed:
            return replace(start, phase="done", reason="an endpoint cannot be tested")
        if len(good) < 2 or not bad:
            if len(self._obs) >= self.max_runs or self._exhausted:
                return replace(start, phase="done", reason="run budget spent on the endpoints")
            return start
        if self._seed_insensitive():
            a = self._analyse_deterministic(good[0], float(np.mean(bad)), start)
        else:
            a = self._analyse_noisy(len(good), len(bad), start)
        if a.phase != "done" and (self._exhausted or len(self._obs) >= self.max_runs):
            why = "run budget spent" if len(self._obs) >= self.max_runs else "no useful run left"
            # undecided either way: a search cut short is not evidence of no regression
            return replace(a, phase="done", status="inconclusive", reason=why)
        return a

    def _seed_insensitive(self) -> bool:
        """No commit gave two values: seeds 0 and 1 at good agreed, and so did every
        commit rechecked since (a probe may turn noisy partway through the history)."""
        seen: dict[int, float] = {}
        return all(seen.setdefault(i, v) == v for i, _, v in self._obs)

    def _recheck(self, g: float, b: float) -> int | None:
        """The first inner commit whose one value is neither endpoint's, unless a second
        seed has shown some inner commit seed-insensitive already: one run, once, so that
        a probe that is seed-insensitive only at good is not bisected as exact."""
        runs = Counter(i for i, _, _ in self._obs if 0 <= i < self._n - 1)
        if any(k >= 2 for k in runs.values()):
            return None
        odd = [i for i, _, v in self._obs
               if 0 <= i < self._n - 1 and v not in (g, b) and not self._untestable[i]]
        return odd[0] if odd else None

    def _analyse_deterministic(self, g: float, b: float, start: _Analysis) -> _Analysis:
        """The probe ignores the seed: one run per commit, exact bisection on the midpoint."""
        n, anc = self._n, self.candidates.anc
        m = self.min_effect or 0.0
        recheck = self._recheck(g, b)
        if recheck is not None:
            return replace(start, phase="recheck", members=[recheck], rho=1.0,
                           reason="checking the probe ignores the seed beyond good")
        if g - b <= m:
            if self._count(n - 1) < 2:  # a second seed at bad first: is it exact too?
                return replace(start, rho=1.0)
            return replace(start, phase="done", status="no-regression", rho=1.0,
                           reason="bad is not worse than good by min_effect")
        mid = (g + b) / 2
        value = {i: v for i, _, v in self._obs}  # one value per commit
        consistent = np.ones(n, dtype=bool)
        q = np.full(n, np.nan)
        for i, v in value.items():
            if i >= 0:
                consistent &= anc[i] == (v < mid)
                q[i] = float(v < mid)
        base = replace(start, p_reg=1.0, effect=g - b, rho=1.0)
        if not consistent.any():
            return replace(base, phase="done", reason="values do not fit a single step",
                           q=np.nan_to_num(q))
        post = consistent / consistent.sum()
        unknown = np.isnan(q)
        q[unknown] = self._ancf[unknown] @ post
        members = [int(j) for j in np.flatnonzero(consistent)]
        base = replace(base, post=post, q=q, members=members, top_mass=float(post.max()))
        if np.unique(self._classes()[consistent]).size > 1:
            return replace(base, phase="search", reason="bisecting")
        bw, gws = self._witnesses(members)
        vals = {-1: g, n - 1: b, **value}
        if any(w not in vals for w in [bw, *gws]):
            return replace(base, phase="verify", witnesses=(bw, gws),
                           reason="measuring the culprit's parent")
        step = m if self.min_effect is not None else (g - b) / 2
        ok = all(vals[w] - vals[bw] >= step and vals[w] >= mid for w in gws) and vals[bw] < mid
        if not ok:
            return replace(base, phase="done", witnesses=(bw, gws), verification=0.0,
                           top_mass=0.0, reason="the culprit's step is below the threshold")
        return replace(base, phase="done", status="found" if len(members) == 1 else "ambiguous",
                       witnesses=(bw, gws), verification=1.0, top_mass=1.0,
                       reason="deterministic probe: culprit and parent measured")

    def _analyse_noisy(self, n_good: int, n_bad: int, start: _Analysis) -> _Analysis:
        n, anc = self._n, self.candidates.anc
        obs = self._kept()
        idx = np.array([i for i, _, _ in obs], dtype=np.int64)
        y = np.array([v for _, _, v in obs])
        seeds = np.unique([k for _, k, _ in obs], return_inverse=True)[1].reshape(-1)
        inside = idx >= 0
        # hypotheses the observed commits cannot tell apart share one evaluation
        inv, counts, reps = unique_columns(anc[np.unique(idx[inside])])
        h = reps.size
        x = np.zeros((y.size, h))
        x[inside] = anc[idx[inside]][:, reps]
        t = np.where(inside, self._position[np.maximum(idx, 0)], 0.0)
        sd = float(y.std())
        ys, m = (y - y.mean()) / sd, (self.min_effect or 0.0) / sd
        prior = np.append((1 - PRIOR_NONE - _PRIOR_DRIFT) * counts / n, _PRIOR_DRIFT)
        fit, w, exceeds = posterior(ys, seeds, x, t, prior, m)
        ends = ~inside | (idx == n - 1)  # the endpoints alone decide when the search starts

        def p_ends_above(effect: float) -> float:  # P(a step > effect | the endpoints)
            _, w_ends, exc = posterior(ys[ends], seeds[ends], 1.0 * inside[ends][:, None],
                                       np.zeros(ends.sum()), np.array([1 - PRIOR_NONE, 1e-300]),
                                       effect)
            return float((w_ends * exc)[..., 0].sum())

        p_start = p_ends_above(m * _START_EFFECT)
        reg = (w * exceeds).sum((0, 1))
        p_reg, p_drift = float(reg.sum()), float(reg[h])
        post = reg[:h][inv] / counts[inv]
        step_post = w.sum((0, 1))[:h][inv] / counts[inv]
        q = self._ancf @ (post / max(post.sum(), 1e-300))
        labels = self._classes()
        class_mass = np.bincount(labels, weights=post)
        top = int(np.argmax(class_mass))
        members = [int(j) for j in np.flatnonzero(labels == top)]
        located = float(np.bincount(labels, weights=step_post)[top] / step_post.sum())
        # step and noise under the top hypothesis, for each seed share rho
        wt = w[:, :, inv[members[0]]]
        w_rho = wt.sum(1) / wt.sum()
        step = -(wt * fit.beta[:, :, inv[members[0]]]).sum(1) / wt.sum(1) * sd
        var = (wt * fit.sigma2[:, :, inv[members[0]]]).sum(1) / wt.sum(1) * sd**2
        var_e = np.maximum((1 - RHO_GRID) * var, 1e-12 * var)
        witnesses = self._witnesses(members)
        log_lr = min(self._paired_log_lr(g, witnesses[0], step, var_e, w_rho, fit.nu)
                     for g in witnesses[1])
        if self._one_end_exact():  # the pooled noise is too small elsewhere: judge the pair
            log_lr = min([log_lr, *(self._paired_log_lr(g, witnesses[0], step, None, w_rho, 0)
                                    for g in witnesses[1])])
        base = replace(start, phase="search", reason="searching",
                       status="inconclusive" if p_reg >= 0.5 else "no-regression",
                       p_reg=p_reg, post=step_post / step_post.sum(), q=q, members=members,
                       top_mass=located, witnesses=witnesses,
                       verification=float(special.expit(log_lr)), effect=float(w_rho @ step),
                       noise=(float(w_rho @ step), float(w_rho @ var_e),
                              float(w_rho @ (RHO_GRID * var))),
                       rho=float(w_rho @ RHO_GRID))
        base = replace(base, pair_cap=self._pair_cap(base))
        # every commit examined closely is another chance for noise to pass the check:
        # raise the bar with their number (a Bonferroni-style guard against slow drift)
        heavy = np.bincount(idx[inside & (idx < n - 1)], minlength=n) >= _HEAVY_RUNS
        bar = math.log(self.confidence / (1 - self.confidence) * max(1.0, heavy.sum() / 2))
        if min(located, p_reg) >= self.confidence and log_lr >= bar:
            return replace(base, phase="done", reason="culprit verified against its parent",
                           status="found" if len(members) == 1 else "ambiguous")
        p_size = p_reg / max(float(w.sum()), 1e-300)  # P(step > min_effect | a change)
        if (p_reg <= 1 - self.confidence and p_size <= _NONE_GIVEN_CHANGE
                and min(n_good, n_bad) >= _MIN_RUNS_FOR_NONE):
            return replace(base, phase="done", status="no-regression",
                           reason="good and bad do not differ by min_effect")
        if p_drift >= self.confidence:
            return replace(base, phase="done", reason="a gradual drift, no single step")
        open_ends = min(n_good, n_bad) < self.cap
        if (p_start < _START_SEARCH and open_ends) or min(n_good, n_bad) < _MIN_PAIRS:
            return replace(base, phase="endpoints", reason="measuring the endpoints")
        # capped endpoints search on while they, and all the runs, lean to a change above
        # min_effect itself (more runs elsewhere cannot wear down a lucky difference between
        # capped endpoints: such a search ran to the budget)
        lean = min(p_reg, p_ends_above(m)) if not open_ends else 1.0
        if _UNSURE_AT_CAP <= lean < _CAPPED_SEARCH:
            base = replace(base, end_cap=max(self.cap, self.max_runs // 8))
            open_ends = min(n_good, n_bad) < base.end_cap
        if not open_ends and lean < _CAPPED_SEARCH:
            return replace(base, phase="done", status="no-regression",
                           reason="good and bad not shown to differ by min_effect")
        # the levels anchor every classification: keep a share of the runs on the endpoints,
        # and all of them while the runs no longer lean to a regression (only the endpoints
        # can wear down a lucky difference between them)
        if open_ends and (n_good + n_bad < _END_SHARE * len(self._obs)
                          or p_reg < _CAPPED_SEARCH):
            return replace(base, phase="endpoints", reason="measuring the endpoints")
        if located >= _VERIFY_FROM:
            pair = [witnesses[0], *witnesses[1]]
            if located >= self.confidence and all(self._count(c) >= base.pair_cap
                                                  for c in pair):
                if open_ends:  # the step's size may be what is unsure: every level run counts
                    return replace(base, phase="endpoints",
                                   reason="culprit and parent capped: measuring the endpoints")
                # only the size is unsure: up to one more cap of runs beside the culprit (a
                # drift, with no step to size, would otherwise take the whole budget)
                if log_lr >= bar and p_reg < self.confidence and self._beside < self.cap:
                    return replace(base, phase="levels",
                                   reason="measuring the levels beside the culprit")
                return replace(base, phase="done",
                               reason="culprit and parent reached the cap unverified")
            return replace(base, phase="verify", reason="verifying the culprit against its parent")
        return base

    def _pair_cap(self, a: _Analysis) -> int:
        """Runs the culprit and its parents may take: the cap, or room for a small step."""
        if a.p_reg < _CAPPED_SEARCH:
            return self.cap
        step, var_e, _ = a.noise
        per_pair = step * step / (4 * max(var_e, 1e-12))  # nats a pair gives, on average
        want = _CHECK_ROOM * math.log(self.confidence / (1 - self.confidence)) / max(per_pair, 1e-6)
        return int(max(self.cap, min(math.ceil(want), self.max_runs // 4)))

    def _one_end_exact(self) -> bool:
        """One endpoint gave one value at every seed, the other did not: the probe is
        noisy only in part of the history, and the equal-noise model pools zeros into its
        noise (a probe that turned noisy at the culprit: 1 wrong culprit in 12 hunts)."""
        spread = [np.ptp(v) if len(v) >= 2 else np.nan
                  for v in ([v for i, _, v in self._obs if i == e] for e in (-1, self._n - 1))]
        return bool(np.isfinite(spread).all() and (spread[0] == 0) != (spread[1] == 0))

    def _paired_log_lr(self, g: int, b: int, step: FloatArray, var_e: FloatArray | None,
                       w_rho: FloatArray, nu: int) -> float:
        """log P(paired g - b differences | a step) / P(... | no change), mixed over rho.

        The noise of a difference is known only to nu degrees of freedom: Student-t
        marginals (not a plug-in normal) keep a lucky early check from passing. Without
        var_e, the pair's own spread is all there is (nu = 0: a vague prior).
        """
        gv, bv = self._values(g, kept=True), self._values(b, kept=True)
        d = np.array([gv[k] - bv[k] for k in gv.keys() & bv.keys()])
        if d.size < _MIN_VERIFY_PAIRS:  # the seed share is too loosely known below this
            return 0.0
        if var_e is None:
            var_e = np.full(step.shape, max(float(np.var(d, ddof=1)) / 2, 1e-12))
        prior = nu * 2 * var_e  # nu pseudo-observations of the difference's variance
        llr = -0.5 * (nu + d.size) * (np.log(prior + ((d[:, None] - step) ** 2).sum(0))
                                      - np.log(prior + (d**2).sum()))
        return float(special.logsumexp(llr, b=w_rho))

    def _eligible(self, cap: int | None = None) -> BoolArray:
        """Commits the search may still run: testable, under the cap, not the bad endpoint."""
        counts = np.array([self._count(i) for i in range(self._n)])
        ok = ~self._untestable & (counts < (self.cap if cap is None else cap))
        ok[-1] = False
        return ok

    # --- choosing the next run ---------------------------------------------------------

    def _pick(self, a: _Analysis, slot: int, batch: int) -> int | None:
        n = self._n
        if a.phase == "check":  # two seeds at good tell a deterministic probe
            live = [len(self._live_seeds(i)) for i in (-1, n - 1)]
            return -1 if live[0] < 2 else n - 1 if live[1] < 2 else None
        if a.phase == "recheck":  # a second seed at the commit (none while it is pending)
            return a.members[0] if self._count(a.members[0]) < 2 else None
        if a.phase == "endpoints":
            ends = [(self._count(i), i) for i in (-1, n - 1) if self._count(i) < a.end_cap]
            return min(ends)[1] if ends else None
        if a.phase == "levels":  # commits surely good or bad, nearest the culprit first
            sure = self._eligible() & ((a.q >= self.confidence) | (a.q <= 1 - self.confidence))
            sure[[i for i, _ in self._pending if i >= 0]] = False
            near = np.abs(np.arange(n) - a.members[0])
            if not sure.any() or self._beside >= self.cap:
                return None
            self._beside += 1
            return int(np.argmin(np.where(sure, near, np.inf)))
        det = a.rho >= 1.0
        if a.phase == "verify" and a.witnesses is not None:
            bw, gws = a.witnesses
            limit = 1 if det else a.pair_cap
            wanted = [w for w in [bw, *gws] if self._count(w) < limit]
            if wanted:
                return min(wanted, key=self._count)
        free = ~np.isin(np.arange(n), [i for i, _ in self._pending])
        if det:
            ok = self._eligible() & free
            ok &= np.array([self._count(i) == 0 for i in range(n)])
            alive = a.post > 0
            split = self._ancf[:, alive].sum(1)
            useful = ok & (split > 0) & (split < alive.sum())
            if not useful.any():
                return None
            if batch > 1:  # multisection: the batch cuts the live range at its quantiles
                target = (slot + 1) / (batch + 1) * alive.sum()
                return int(np.argmin(np.where(useful, np.abs(split - target), np.inf)))
            return int(np.argmax(np.where(useful, np.minimum(split, alive.sum() - split), -1.0)))
        # past the cap only when nothing under it tells anything: after a small step the
        # culprit's neighbours can need more runs than the cap to tell apart
        for cap in [self.cap] + ([a.pair_cap] if a.pair_cap > self.cap else []):
            ok = self._eligible(cap) & free
            if ok.any() and batch > 1:  # spread a parallel batch over the posterior's quantiles
                target = (slot + 1) / (batch + 1)
                return int(np.argmin(np.where(ok, np.abs(a.q - target), np.inf)))
            best = self._most_informative(a, ok)
            if best is not None:
                return best
        return None

    def _most_informative(self, a: _Analysis, ok: BoolArray) -> int | None:
        if not ok.any():
            return None
        n = self._n
        step, var_e, var_s = a.noise
        per_seed = np.bincount([k for _, k, _ in self._obs])
        nxt = np.full(n, self._seed_for(-2, a), dtype=np.int64)  # -2: a commit not yet run
        for i in self._used:
            if 0 <= i < n:
                nxt[i] = self._seed_for(i, a)
        n_k = np.where(nxt < per_seed.size, per_seed[np.minimum(nxt, per_seed.size - 1)], 0)
        spread = var_e + 1.0 / (1.0 / max(var_s, 1e-300) + n_k / var_e)
        info = np.where(ok, binary_information(a.q, max(step, 1e-9) / np.sqrt(spread)), -1.0)
        best = int(np.argmax(info))
        return best if info[best] > 1e-4 else None
