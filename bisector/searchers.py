"""How one range good..bad is searched, and the record of every commit tested.

Two strategies share one `Recorder`:

- `git_search`: git's own bisection (`git bisect good/bad/skip` in the hunt's
  worktree chooses each commit). Used for a deterministic probe with one job:
  one run per commit decides it exactly, and git's halving is optimal.
- `engine_search`: the noisy engine (`noisy.NoisySearch`) chooses commits and
  seeds and decides when it knows; its confident verdicts are then replayed
  into `git bisect` in the worktree, so `git bisect log` stays the record.

Both return a `SegmentResult`; neither prints (progress goes to a callback).
Each verdict goes into the recorder's `trail` under the range being searched, so a
commit judged again in a range beside a culprit keeps both verdicts, in order.
`spare_slot_commits` picks what the endpoint round's idle slots measure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import decide
from .decide import Baseline
from .errors import ProbeFailedAtEndpoint
from .git_ops import BisectWorktree, GitRepo
from .measure import Measurer
from .model import CommitInfo, Direction, Outcome, Run, Verdict

if TYPE_CHECKING:  # numpy is imported where the noisy engine needs it: git's path never does
    import numpy as np

Progress = Callable[[str], None]


@dataclass(frozen=True)
class SegmentResult:
    status: str  # found | ambiguous | no-regression | inconclusive | seed-sensitive
    first_bad: str | None = None
    confidence: float = 0.0
    candidates: tuple[tuple[str, float], ...] = ()
    reason: str = ""
    bisect_log: str = ""
    p_regression: float | None = None  # noisy engine: P(a step > min_effect in the range)
    span: tuple[str, str, int, float] | None = None  # undecided: where 95% of the mass lies


@dataclass
class CommitRecord:
    """What the hunt learned at one commit, in the order commits were first tested."""

    info: CommitInfo
    verdict: str = "unknown"
    runs: list[Run] = field(default_factory=list)
    p_bad: float | None = None
    reason: str = ""

    @property
    def sha(self) -> str:
        return self.info.sha

    def samples(self, metric: str) -> dict[int, float]:
        return {r.request.seed: v for r in self.runs if (v := r.value(metric)) is not None}


Range = tuple[str, str]  # (good, bad) of one search


@dataclass
class TrailEntry:
    """One commit's verdict in one search; a commit searched in two ranges has two."""

    record: CommitRecord
    range: Range
    verdict: str
    p_bad: float | None
    reason: str
    runs: list[Run]  # the commit's runs when the verdict was given (or last revised)


class Recorder:
    """Every run the search took, by commit; the endpoints of the hunt are kept apart."""

    def __init__(self, repo: GitRepo, metric: str, endpoints: Range) -> None:
        self.repo = repo
        self.metric = metric
        self.endpoints = set(endpoints)
        self.records: dict[str, CommitRecord] = {}
        self.rounds = 0  # batches of runs measured together (one per round of the search)
        # (role, runs, seconds) of every batch in order, the endpoint round included
        self.batches: list[tuple[str, int, float]] = []
        self.runs: dict[str, list[Run]] = {}  # every commit's runs, endpoints included
        self._values: dict[str, dict[int, float]] = {}
        self.aside: dict[str, set[int]] = {}  # seeds whose value the noisy search set aside
        self.searching = endpoints  # the range being searched (its good, bad)
        self.trail: list[TrailEntry] = []  # verdicts in the order they were first given
        self._entries: dict[tuple[Range, str], TrailEntry] = {}

    def add(self, run: Run) -> None:
        sha = run.request.commit
        self.runs.setdefault(sha, []).append(run)
        if (run.ok and (v := run.value(self.metric)) is not None
                and run.request.seed not in self.aside.get(sha, ())):
            self._values.setdefault(sha, {})[run.request.seed] = v
        if sha not in self.endpoints:
            if sha not in self.records:
                self.records[sha] = CommitRecord(self.repo.commit_info(sha))
            self.records[sha].runs.append(run)

    def samples(self, sha: str) -> dict[int, float]:
        return dict(self._values.get(sha, {}))

    def failed_seeds(self, sha: str) -> set[int]:
        """Seeds whose run at `sha` failed (retries spent) and never measured it."""
        return {r.request.seed for r in self.runs.get(sha, []) if not r.ok} - set(
            self._values.get(sha, {}))

    def set_aside(self, sha: str, seed: int) -> None:
        """Leave a run's value out of every mean and pair from now on (an outlier)."""
        self.aside.setdefault(sha, set()).add(seed)
        self._values.get(sha, {}).pop(seed, None)

    def seed_sensitive(self) -> bool:
        """Some commit gave two seeds two values: the probe is noisy there."""
        return any(len(set(v.values())) > 1 for v in self._values.values())

    def decide(self, sha: str, verdict: str, p_bad: float | None, reason: str,
               within: Range | None = None) -> None:
        """`sha`'s verdict in the search of `within` (default: the one running now).

        A revised verdict keeps its entry's place in the trail: the place is when the
        commit was first decided in that range.
        """
        record = self.records[sha]
        record.verdict, record.p_bad, record.reason = verdict, p_bad, reason
        key = (within or self.searching, sha)
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = TrailEntry(record, key[0], verdict, p_bad, reason, [])
            self.trail.append(entry)
        entry.verdict, entry.p_bad, entry.reason = verdict, p_bad, reason
        entry.runs = list(record.runs)

    def entry(self, sha: str, within: Range) -> TrailEntry | None:
        return self._entries.get((within, sha))

    def measure(self, m: Measurer, wanted: Sequence[tuple[str, int]],
                role: str | Sequence[str] = "search") -> list[Run]:
        """One round of the search: measure, time and record the runs."""
        runs = self.timed_batch(m, wanted, role)
        self.rounds += 1
        for run in runs:
            self.add(run)
        return runs

    def timed_batch(self, m: Measurer, wanted: Sequence[tuple[str, int]],
                    role: str | Sequence[str]) -> list[Run]:
        """Measure runs together and note the batch in `batches` (under its first role);
        the runs are not added."""
        started = time.monotonic()
        runs = m.measure_many(wanted, role=role)
        first = role if isinstance(role, str) else role[0]
        self.batches.append((first, len(runs), time.monotonic() - started))
        return runs


def usable(run: Run, metric: str) -> bool:
    return run.ok and run.value(metric) is not None


# -- the endpoint round's idle slots ---------------------------------------------


def spare_slot_commits(ids: Sequence[str], jobs: int) -> list[str]:
    """Commits that fill the endpoint round's free slots, at even cuts of good..bad.

    The endpoints take three runs (good at seeds 0 and 1, bad at seed 0), so with
    `jobs` slots their last wave leaves `-3 % jobs` slots idle (1 of 4, 5 of 8, 1
    of 2). Each measures a commit where a multisection of the range would cut it:

        jobs 4:  [G  .  .  .  .  x  .  .  .  .  B]      one cut, the middle
        jobs 8:  [G  .  x  .  x  .  x  .  x  .  x  .  B]  five even cuts

    The search uses these runs whatever the endpoints turn out to say.
    """
    n = len(ids)  # candidates for the first bad commit; ids[-1] is bad itself
    k = min(-3 % jobs, n - 1)
    # cut i leaves i/(k+1) of the candidates at or before it
    return [ids[-(-i * n // (k + 1)) - 1] for i in range(1, k + 1)]


# -- git's bisection -------------------------------------------------------------


def git_search(wt: BisectWorktree, m: Measurer, rec: Recorder, good: str, bad: str,
               base: Baseline, *, first_parent: bool, progress: Progress) -> SegmentResult:
    """Classic bisection driven by git: one run per commit, classified against `base`."""
    wt.reset()
    rec.searching = (good, bad)
    step = wt.start(bad, good, first_parent=first_parent)
    levels = {*base.good.values(), *base.bad.values()}
    rechecked = False
    while step.next_commit is not None:
        sha = step.next_commit
        (run,) = rec.measure(m, [(sha, 0)])
        record = rec.records[sha]
        if not rechecked and usable(run, rec.metric) and run.value(rec.metric) not in levels:
            # Seeds 0 and 1 agreed at good only: a value neither endpoint gave may be noise
            # (a probe can turn seed-sensitive partway through the history). Once, a second
            # seed tells.
            rechecked = True
            (again,) = rec.measure(m, [(sha, 1)])
            if usable(again, rec.metric) and again.value(rec.metric) != run.value(rec.metric):
                return SegmentResult("seed-sensitive", reason=(
                    f"seeds 0 and 1 give {run.value(rec.metric):.6g} and "
                    f"{again.value(rec.metric):.6g} at {sha[:8]}"), bisect_log=wt.log())
        if usable(run, rec.metric):
            verdict = decide.classify(record.samples(rec.metric), base)
            rec.decide(sha, verdict.value, 1.0 if verdict is Verdict.BAD else 0.0,
                       "deterministic probe: 1 run")
        else:
            verdict = Verdict.SKIP
            rec.decide(sha, verdict.value, record.p_bad, why_untestable(record.runs))
        progress(step_line(record, rec.metric, step.remaining))
        step = wt.mark(verdict.value, sha)
    log = wt.log()
    if step.first_bad is not None:
        return SegmentResult("found", step.first_bad, 1.0, ((step.first_bad, 1.0),),
                             "git bisect named it", log)
    share = 1.0 / max(len(step.candidates), 1)
    return SegmentResult("ambiguous", None, share,
                         tuple((c, share) for c in step.candidates),
                         "untestable commits hide the culprit", log)


# -- the noisy engine ------------------------------------------------------------


def ancestry(ids: Sequence[str], parents: Mapping[str, Sequence[str]]) -> np.ndarray:
    """anc[i, j]: commit j is commit i or one of its ancestors (ids oldest first)."""
    import numpy as np

    index = {sha: i for i, sha in enumerate(ids)}
    anc = np.zeros((len(ids), len(ids)), dtype=bool)
    for i, sha in enumerate(ids):
        anc[i, i] = True
        for p in parents.get(sha, ()):
            if p in index:
                anc[i] |= anc[index[p]]
    return anc


def engine_search(wt: BisectWorktree, m: Measurer, rec: Recorder, good: str, bad: str, *,
                  direction: Direction, min_effect: float | None, confidence: float,
                  budget: int, jobs: int, first_parent: bool, progress: Progress
                  ) -> SegmentResult:
    """Bisect good..bad with the noisy engine, feeding it every value the hunt has first.

    `budget` is the number of new probe runs this search may start.
    """
    from .candidates import Candidates
    from .noisy import BAD, GOOD, NoisySearch

    rec.searching = (good, bad)
    ids, parents = wt.repo.rev_parents(good, bad, first_parent=first_parent)
    known = [(sha, seed, value) for sha in (good, *ids)
             for seed, value in rec.samples(sha).items()]
    engine = NoisySearch(Candidates(ids, ancestry(ids, parents)),
                         higher_is_better=direction is Direction.HIGHER,
                         confidence=confidence, min_effect=min_effect,
                         max_runs=len(known) + budget)
    name = {good: GOOD, bad: BAD}
    sha_of = {GOOD: good, BAD: bad}
    for sha, seed, value in known:  # runs the hunt already has (paired seeds stay paired)
        engine.observe(name.get(sha, sha), seed, value)
    for sha in (good, *ids):  # and its failed runs (the endpoint round's, its spares')
        measured = rec.samples(sha)
        for run in rec.runs.get(sha, []):  # (a run set aside measured: it is no failure)
            if not usable(run, rec.metric) and run.request.seed not in measured:
                _observe_failure(engine, name.get(sha, sha), run)
                if engine.endpoint_failed:
                    raise _endpoint_failure(engine, run, "good" if sha == good else "bad")
    shown: set[str] = set()
    now = engine.result()  # what the engine concludes; asking for runs does not change it
    while True:
        wanted = engine.next_runs(jobs)
        if not wanted:
            break
        batch = [(sha_of.get(c, c), seed) for c, seed in wanted]
        if len(batch) > 1:
            progress(f"{len(batch)} probe runs in flight ({m.probe_runs} run, "
                     f"{m.read_back} read back so far){_belief(now, sha_of)}")
        roles = ["endpoint" if sha in (good, bad) else "search" for sha, _ in batch]
        for run in rec.measure(m, batch, role=roles):
            sha = run.request.commit
            if usable(run, rec.metric):
                engine.observe(name.get(sha, sha), run.request.seed, run.metrics[rec.metric])
            else:
                _observe_failure(engine, name.get(sha, sha), run)
                if engine.endpoint_failed:
                    raise _endpoint_failure(engine, run, "good" if sha == good else "bad")
                progress(f"{sha[:8]} seed {run.request.seed}: {run_failure(run)}; "
                         "the search leaves this run out")
        now = engine.result()
        _show_progress(now, rec, shown, progress)
    result = engine.result()
    for key, seed, value in engine.set_aside_runs():
        sha = sha_of.get(key, key)
        if seed not in rec.aside.get(sha, ()):
            rec.set_aside(sha, seed)
            progress(f"{sha[:8]} seed {seed}: {rec.metric} = {value:.4g} set aside, far from "
                     "the commit's other runs (a diverged training?)")
    for summary in result.commits:  # final verdicts, the undecided ones last
        if summary.commit in rec.records:
            rec.decide(summary.commit, _verdict(summary.decision), summary.p_bad,
                       summary.reason)
    log = _replay_into_git(wt, good, bad, [rec.records[c] for c in ids if c in rec.records],
                           first_parent)
    cands = tuple((c, p) for c, p in result.candidates)
    return SegmentResult(result.status, result.first_bad, result.confidence, cands,
                         result.reason, log, result.p_regression, result.span)


def _observe_failure(engine: Any, key: str, run: Run) -> None:
    """Exit 125, or a valid result without the metric, speaks for the commit; any other
    failure for its seed alone (a training run may diverge on one seed)."""
    if run.outcome is Outcome.SKIP or run.ok:
        engine.observe_untestable(key)
    else:
        engine.observe_failed(key, run.request.seed)


def _endpoint_failure(engine: Any, run: Run, role: str) -> ProbeFailedAtEndpoint:
    from .noisy import BAD, GOOD

    seeds = sorted(engine.failed_seeds(GOOD if role == "good" else BAD))
    on = f" (seeds {', '.join(map(str, seeds))})" if len(seeds) > 1 else ""
    return ProbeFailedAtEndpoint(
        f"the probe fails at the {role} commit {run.request.commit[:8]}{on}: "
        f"{run_failure(run)}; fix the probe or choose another --{role}", run.output_tail)


def _belief(now: Any, sha_of: Mapping[str, str]) -> str:
    """Where the search stands: P(a regression), the likeliest culprit, what runs next."""
    text = f"; P(regression) {now.p_regression:.2f}"
    if now.candidates and now.p_regression >= 0.5:
        commit, p = max(now.candidates, key=lambda c: c[1])  # listed oldest first
        text += f", likeliest culprit {sha_of.get(commit, commit)[:8]} (P {p:.2f})"
    return f"{text}; {now.reason}" if now.reason else text


def _show_progress(now: Any, rec: Recorder, shown: set[str], progress: Progress) -> None:
    """One line per commit once the engine (its result `now`) has decided it."""
    for summary in now.commits:
        if summary.decision in ("good", "bad", "untestable") and summary.commit not in shown:
            if summary.commit in rec.records:
                shown.add(summary.commit)
                rec.decide(summary.commit, _verdict(summary.decision), summary.p_bad,
                           summary.reason)
                progress(step_line(rec.records[summary.commit], rec.metric, None))


def _verdict(decision: str) -> str:
    return {"untestable": "skip"}.get(decision, decision)


def _replay_into_git(wt: BisectWorktree, good: str, bad: str, records: list[CommitRecord],
                     first_parent: bool) -> str:
    """Mark the engine's confident verdicts in git bisect, so `git bisect log` records them.

    A record only: git's own view never overrides the engine's answer.
    """
    marks = [(r.verdict, r.sha) for r in records if r.verdict in ("good", "bad", "skip")]
    return wt.replay(bad, good, marks, first_parent=first_parent)


# -- words -----------------------------------------------------------------------


def why_untestable(runs: list[Run]) -> str:
    last = runs[-1] if runs else None
    if last is None:
        return "not run"
    if last.outcome is Outcome.SKIP:
        return "untestable (exit 125)"
    return f"untestable: {run_failure(last)}"


def run_failure(run: Run) -> str:
    """Why a run failed, with the probe's last line of output when it says more."""
    if run.outcome is Outcome.SKIP:
        return "exit 125"
    why = run.error or run.outcome.value
    lines = [line.strip() for line in (run.output_tail or "").splitlines() if line.strip()]
    if lines and lines[-1] not in why:
        last = lines[-1] if len(lines[-1]) <= 80 else lines[-1][:79] + "…"
        why += f" (its last output: {last})"
    return why


def fmt_samples(values: Mapping[int, float]) -> str:
    if len(values) == 1:
        return f"{next(iter(values.values())):.4g}"
    return f"{decide.mean(values):.4g} (mean of {len(values)})"


def step_line(record: CommitRecord, metric: str, remaining: int | None) -> str:
    samples = record.samples(metric)
    value = fmt_samples(samples) if samples else why_untestable(record.runs)
    subject = record.info.subject
    subject = subject if len(subject) <= 48 else subject[:47] + "…"
    line = f"{record.sha[:8]} {subject}: {metric} = {value} -> {record.verdict}"
    if record.p_bad is not None and 0.0 < record.p_bad < 1.0:
        line += f" (P(bad) {record.p_bad:.3f})"
    if remaining is not None:
        line += f" ({remaining} left to test after this)"
    return line
