"""Orchestration of `bisector find`: endpoints, the search, every regression, attribution.

Wires the adapters (git worktrees, the store, the probe through `Measurer`) to
the strategies in `searchers` and the pure decisions in `decide`. After the
first culprit, the ranges on either side of it are searched too whenever they
still hold a regression, so two regressions in one range are both found. It
reports progress through a callback and returns the SPEC result object as a
dict (its parts formatted by `find_json`); it never prints and never exits.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from contextlib import ExitStack, suppress
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

from . import decide
from .background import close_in_background, preload
from .decide import Baseline, Samples
from .errors import BudgetTooSmall, UsageError
from .executors import Executor, LocalExecutor, SignalsStarts
from .find_json import endpoint_json, step_json, trail_json
from .git_ops import BisectWorktree, GitRepo
from .measure import Measurer, require_measurement
from .model import Outcome, Run
from .searchers import (
    Range,
    Recorder,
    SegmentResult,
    engine_search,
    fmt_samples,
    git_search,
    run_failure,
    spare_slot_commits,
)
from .settings import FindSettings
from .store import Store, default_store_path
from .summary import left_out, runs_phrase

Progress = Callable[[str], None]
MAX_REGRESSIONS = 5  # steps found in one range before the hunt stops looking for more
SUB_RANGE_SHOWN = 0.9  # P(a range left beside a culprit regresses by > min_effect) to search it
SUB_RANGE_PAIRS = 16  # paired seeds its endpoints may get while that is undecided


def open_store(settings_store: Path | None, repo: GitRepo) -> Store:
    return Store(settings_store or default_store_path(repo.common_dir))


@dataclass(frozen=True)
class Step:
    """A verified first bad commit of some range, next to its first parent."""

    commit: str
    parent: str
    confidence: float
    result: SegmentResult


class FindSession:
    """One hunt: call `run()` once."""

    def __init__(self, settings: FindSettings, progress: Progress | None = None) -> None:
        self.s = settings
        self.progress = progress or (lambda _msg: None)
        self.repo = GitRepo(settings.repo)
        self.good, self.bad = self.repo.validate_range(settings.good, settings.bad)
        self.rec = Recorder(self.repo, settings.metric, (self.good, self.bad))
        self.position: dict[str, int] = {}  # place in history: good 0, then good..bad
        self.hunt_id = ""
        self.bisect_logs: list[str] = []
        self.ranges: list[dict[str, Any]] = []  # the ranges beside each culprit, checked
        self.jobs = settings.jobs  # runs in flight at once (a Dask cluster may set it)

    # -- the hunt ---------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        with open_store(self.s.store, self.repo) as store:
            self.hunt_id = store.start_hunt("find", self._params())
            status = "error"
            cleanup: Callable[[], None] | None = None
            try:
                t0 = time.monotonic()
                with ExitStack() as stack:
                    remote = self.s.executor == "dask"
                    trees = [stack.enter_context(BisectWorktree(self.repo, self.bad))
                             for _ in range(1 if remote else self.s.jobs)]
                    executor = self._executor(stack, trees)
                    m = Measurer(store, executor, self.s.probe, hunt_id=self.hunt_id,
                                 artifacts_root=store.path.parent / "artifacts",
                                 pins=self.s.pins, timeout=self.s.timeout)
                    t1 = time.monotonic()
                    result = self._hunt(trees[0], m)
                    # Nothing below needs the worktrees (or a Dask client): they go
                    # away while the result is stored and the report rendered.
                    cleanup = close_in_background(stack.pop_all())
                t2 = time.monotonic()
                status = result["status"]
                out_dir = self.s.out or Path("reports") / self.hunt_id
                result["report"] = str(out_dir / "index.html")
                # Seconds on the way to the answer: worktrees made, hunt (probes
                # included), report, then what was left of removing the worktrees.
                result["timing"] = {"setup": t1 - t0, "hunt": t2 - t1}
                store.finish_hunt(self.hunt_id, status, result)
                t3 = time.monotonic()
                self._render(store, out_dir, result)
                t4 = time.monotonic()
                wait = cleanup
                cleanup = None
                wait()
                result["timing"].update(report=t4 - t3, cleanup=time.monotonic() - t4)
                return result
            except KeyboardInterrupt:
                status = "interrupted"
                raise
            finally:
                if cleanup is not None:  # an error is on its way already: let it win
                    with suppress(BaseException):
                        cleanup()
                if status in ("error", "interrupted"):
                    store.finish_hunt(self.hunt_id, status, {"status": status})

    def _executor(self, stack: ExitStack, trees: list[BisectWorktree]) -> Executor:
        """Local slots, one worktree each; or a Dask cluster (the worktree then only bisects)."""
        if self.s.executor != "dask":
            return LocalExecutor(trees, gpus=self.s.gpus)
        if not self.s.scheduler:
            raise UsageError("--executor dask needs --scheduler tcp://HOST:PORT")
        try:
            from .dask_executor import DaskExecutor
        except ImportError:
            raise UsageError("--executor dask needs Dask: pip install 'bisector[dask]'") from None
        executor = DaskExecutor(self.s.scheduler, self.s.remote or str(self.repo.root),
                                jobs=self.s.jobs if self.s.jobs > 1 else None,
                                resources={"GPU": 1} if self.s.gpus else None)
        self.jobs = executor.jobs
        self.progress(f"dask: {executor.jobs} probe runs at a time on {self.s.scheduler}")
        return stack.enter_context(executor)

    def _render(self, store: Store, out_dir: Path, result: dict[str, Any]) -> None:
        """The report, rendered from the store so that `bisector report` gives the same page."""
        from .report import render_report, summary_markdown

        try:
            render_report(store, self.hunt_id, out_dir)
        except OSError as exc:  # the hunt is stored; a report can be rendered again later
            self.progress(f"warning: cannot write the report to {out_dir}: {exc}; "
                          f"render it later with `bisector report {self.hunt_id}`")
            result["report"] = None
        if self.s.summary_md is not None:
            self.s.summary_md.write_text(summary_markdown(result, result["report"]),
                                         encoding="utf-8")

    def _hunt(self, wt: BisectWorktree, m: Measurer) -> dict[str, Any]:
        started = time.monotonic()
        ids = self.repo.rev_list(self.good, self.bad, first_parent=self.s.first_parent)
        extra = [(sha, 0) for sha in spare_slot_commits(ids, self.jobs)]
        # What the rest of the hunt imports is imported while the endpoint runs are in
        # flight, once their probes have started (they come first) and if they run long
        # enough to hide it: beside runs of a tenth of a second, the imports slowed each
        # by as much again (2 cores), and no hunt needs them before its report.
        first_wave = min(3 + len(extra), self.jobs)
        ex = m.executor
        if isinstance(ex, SignalsStarts):
            preload(after=partial(_probes_run_long, ex, first_wave))
        base = self._endpoints(m, extra)
        self.position = {sha: i for i, sha in enumerate([self.good, *ids])}
        # A probe that gives one value whatever the seed, run one at a time: git's own
        # bisection is exact and optimal. Anything else goes to the noisy engine.
        classic = base.deterministic and self.jobs == 1
        if classic and not base.regressed:  # bad ran once: its seed 1 says whether it is exact
            base = self._second_seed_at_bad(m)
            classic = base.deterministic
        if classic and not base.regressed:
            g, b = decide.mean(base.good), decide.mean(base.bad)
            self.progress(f"no regression: {self.s.metric} went from {g:.4g} to {b:.4g} "
                          f"({self.s.direction.value} is better; min effect "
                          f"{base.min_effect:.4g})")
            return self._result("no-regression", base, m, [], SegmentResult("no-regression"))
        how = "git bisect, one run per commit" if classic else "the noisy engine, paired seeds"
        self.progress(f"searching {len(ids)} commits with {how}; {self.s.metric} "
                      f"{decide.mean(base.good):.4g} -> {decide.mean(base.bad):.4g}")
        first = self._search(wt, m, self.good, self.bad, base, classic)
        if base.deterministic and self.rec.seed_sensitive():  # judge the rest as noisy
            classic = False
            base = self._baseline_now(noisy=True)
        steps: list[Step] = []
        if first.first_bad is not None:
            steps = self._every_step(wt, m, first, base, classic)
        self.progress(f"search done in {time.monotonic() - started:.1f}s, "
                      f"{runs_phrase(m.probe_runs, m.read_back, m.failed_runs)}")
        status = "found" if steps else first.status
        result = self._result(status, base, m, steps, first)
        if steps and self.s.attribute:
            for entry, step in zip(result["regressions"], steps, strict=True):
                try:
                    entry["attribution"] = self._attribute(m, step)
                except BudgetTooSmall as exc:  # the culprit stands; only its split is missing
                    left = max((self.s.max_runs or 0) - m.probe_runs, 0)
                    note = (f"attribution of {step.commit[:8]} skipped: {left} runs were left "
                            f"of --max-runs {self.s.max_runs} and it needs at least "
                            f"{exc.needed}; raise --max-runs, or run `bisector attribute "
                            f"--bad {step.commit[:8]}`")
                    self.progress(f"warning: {note}")
                    result.setdefault("notes", []).append(note)
            # SPEC: first_bad is the first of the regressions and carries its attribution
            result["attribution"] = result["regressions"][0]["attribution"]
            result["first_bad"]["attribution"] = result["attribution"]
            result["probe_runs"], result["reused_runs"] = m.probe_runs, m.read_back
            result["failed_runs"] = m.failed_runs
        return result

    def _search(self, wt: BisectWorktree, m: Measurer, good: str, bad: str, base: Baseline,
                classic: bool) -> SegmentResult:
        """good..bad by git's exact bisection or the noisy engine; a probe that turns out
        seed-sensitive during the first goes on to the second, with every run so far."""
        if classic:
            result = git_search(wt, m, self.rec, good, bad, base,
                                first_parent=self.s.first_parent, progress=self.progress)
            if result.status != "seed-sensitive":
                self.bisect_logs.append(result.bisect_log)
                return result
            self.progress(f"the probe is not seed-insensitive after all ({result.reason}): "
                          "searching again with the noisy engine, paired seeds")
        budget = (self.s.max_runs or 400) - m.probe_runs
        result = engine_search(wt, m, self.rec, good, bad, direction=self.s.direction,
                               min_effect=self.s.min_effect, confidence=self.s.confidence,
                               budget=max(budget, 0), jobs=self.jobs,
                               first_parent=self.s.first_parent, progress=self.progress)
        self.bisect_logs.append(result.bisect_log)
        return result

    def _every_step(self, wt: BisectWorktree, m: Measurer, first: SegmentResult,
                    base: Baseline, classic: bool) -> list[Step]:
        """The first culprit, then any regression left on either side of it.

        [G ........ C ........ B]  ->  [G .. P] and [C .. B], each searched only when
        its own endpoints still differ by more than the smallest effect that matters.
        """
        steps: list[Step] = []
        pending = [(self.good, self.bad, first)]
        while pending and len(steps) < MAX_REGRESSIONS:
            good, bad, found = pending.pop(0)
            if found.first_bad is None:
                continue
            culprit = found.first_bad
            parent = self.repo.parents(culprit)[0]
            # A noisy probe needs a few paired seeds for an honest interval on the step
            # (and for attribution); a seed-insensitive one is exact with one.
            self._pair(m, parent, culprit, 1 if base.deterministic else self.s.repeats,
                       verified=(good, bad))
            steps.append(Step(culprit, parent, found.confidence, found))
            for sub_good, sub_bad in ((good, parent), (culprit, bad)):
                if sub_good == sub_bad or not self.repo.is_ancestor(sub_good, sub_bad):
                    continue
                sub = self._still_regressed(m, sub_good, sub_bad, base)
                if sub is None:
                    continue
                self.progress(f"{sub_good[:8]}..{sub_bad[:8]} still regresses by "
                              f"{sub.regression:.4g}: searching it too")
                pending.append((sub_good, sub_bad,
                                self._search(wt, m, sub_good, sub_bad, sub, classic)))
        return sorted(steps, key=lambda st: self.position.get(st.commit, 0))

    def _pair(self, m: Measurer, before: str, after: str, n: int = 1,
              limit: int | None = None, verified: Range | None = None) -> None:
        """Make sure two commits share at least `n` seeds (in at most `limit` runs).

        `verified`: the two are a culprit's parent and the culprit found by the search of
        that range, and their trail entries there show the pair.
        """
        a, b = set(self.rec.samples(before)), set(self.rec.samples(after))
        if len(a & b) >= n:
            return
        seeds = sorted(a | b)  # every seed either side has, then new ones up to n
        seeds += [k for k in range(n + len(seeds)) if k not in seeds][: max(n - len(seeds), 0)]
        have = {sha: {*self.rec.samples(sha), *self.rec.failed_seeds(sha),
                      *self.rec.aside.get(sha, ())} for sha in (before, after)}
        wanted = [(sha, s) for sha in (before, after) for s in seeds if s not in have[sha]]
        if limit is not None:  # whole pairs first: the lowest seeds
            wanted = sorted(wanted, key=lambda run: run[1])[:limit]
        if wanted:
            self.rec.measure(m, wanted, role="verify")
            if verified is None:
                return
            # the search judged the parent good and the culprit bad in that range
            pairs = len(set(self.rec.samples(before)) & set(self.rec.samples(after)))
            for sha, verdict in ((before, "good"), (after, "bad")):
                if sha in self.rec.records:
                    entry = self.rec.entry(sha, verified)
                    why = f"verification pair: {pairs} paired seed{'s' if pairs != 1 else ''}"
                    if lost := self.rec.failed_seeds(sha):
                        why += f"; {left_out(lost)}"
                    self.rec.decide(sha, entry.verdict if entry else verdict,
                                    entry.p_bad if entry else None, why, verified)

    def _still_regressed(self, m: Measurer, good: str, bad: str, base: Baseline) -> Baseline | None:
        """good..bad's endpoints, when they are shown to differ by more than min_effect."""
        if base.deterministic:  # exact: the point estimate decides
            self._pair(m, good, bad)
            p = None
        else:
            p = self._p_still_regressed(m, good, bad, base.min_effect)
        sub = Baseline(self.rec.samples(good), self.rec.samples(bad), self.s.direction,
                       base.min_effect)
        p = float(sub.regressed) if p is None else p
        paired = decide.paired_step(sub.good, sub.bad, self.s.direction)
        # on the seeds P was judged on (the means, should no seed be shared)
        worse = self.s.direction.worse(0.0, paired.effect) if paired.n else sub.regression
        self.ranges.append({"good": good, "bad": bad, "regression": worse, "pairs": paired.n,
                            "p_exceeds": p, "searched": p >= SUB_RANGE_SHOWN})
        if p < SUB_RANGE_SHOWN:
            self.progress(f"{good[:8]}..{bad[:8]} {self._unsearched(worse, p, base)}; "
                          "not searched")
            return None
        return sub

    def _unsearched(self, worse: float, p: float, base: Baseline) -> str:
        """Why a range beside a culprit is left alone, in the terms its probe allows."""
        moved = (f"regresses by {worse:.4g}" if worse > 0 else
                 f"improves by {-worse:.4g}" if worse < 0 else "does not change")
        if self.s.min_effect is not None:
            which = "the min effect"
        elif base.deterministic:
            which = "the default min effect (round-off, for a seed-insensitive probe)"
        else:
            which = "three noise sd (--min-effect sets this bar)"
        if base.deterministic:  # exact values: no probability to quote
            return (moved if worse == 0 else
                    f"{moved}, not more than {base.min_effect:.4g}, {which}")
        return (f"{moved}: not shown to regress by more than {base.min_effect:.4g}, "
                f"{which} (P {p:.2f})")

    def _p_still_regressed(self, m: Measurer, good: str, bad: str, min_effect: float) -> float:
        """P(bad is worse than good by more than min_effect), on paired seeds.

        Judged on the seeds the two share; while that is between 1/2 and SUB_RANGE_SHOWN,
        first the pairs are completed in one batch (each commit runs the seeds the other
        has, the endpoint's seeds that judged the whole hunt), then new seeds are paired one
        at a time up to SUB_RANGE_PAIRS. Below 1/2 the range is left at once (no runs): the
        point estimate alone had sent drifts into second searches of a few hundred runs.
        Measured against (drift cell 85.2 runs, 3 sd 26.4): one new pair at a time from the
        start (drift 89.7: looking after every pair let drifts cross 0.9 by chance) and one
        batch straight to SUB_RANGE_PAIRS (3 sd 28.2).
        """
        pairs = max(len(set(self.rec.samples(good)) & set(self.rec.samples(bad))), 2)
        while True:
            left = None if self.s.max_runs is None else max(self.s.max_runs - m.probe_runs, 0)
            self._pair(m, good, bad, pairs, limit=left)
            p = decide.p_worse_by(self.rec.samples(good), self.rec.samples(bad),
                                  self.s.direction, min_effect)
            # completing the pairs may share more seeds than asked: go on from there
            pairs = max(pairs, len(self.rec.samples(good).keys() & self.rec.samples(bad).keys()))
            room = self.s.max_runs is None or m.probe_runs + 2 <= self.s.max_runs
            if not 0.5 < p < SUB_RANGE_SHOWN or pairs >= SUB_RANGE_PAIRS or not room:
                return p
            pairs += 1

    def _attribute(self, m: Measurer, step: Step) -> dict[str, Any]:
        """Split one step between its config delta and its code."""
        from .attribution import attribute

        self.progress(f"attributing the step at {step.commit[:8]} to config and code")
        before, after = self.rec.samples(step.parent), self.rec.samples(step.commit)
        seeds = sorted(set(before) & set(after))
        budget = None if self.s.max_runs is None else max(self.s.max_runs - m.probe_runs, 0)
        min_effect = self.s.min_effect
        if min_effect is None:
            # What "no effect" means when the user did not say: less than a tenth of
            # this step (or the hunt's own threshold, when that is finer).
            size = abs(decide.paired_step(before, after, self.s.direction).effect)
            min_effect = min(decide.default_min_effect(before, after), 0.1 * size)
        return attribute(m, good=step.parent, bad=step.commit, metric=self.s.metric,
                         direction=self.s.direction, seeds=seeds or None, pins=self.s.pins,
                         min_effect=min_effect, max_runs=budget, progress=self.progress)

    # -- endpoints --------------------------------------------------------------

    def _endpoints(self, m: Measurer, extra: list[tuple[str, int]]) -> Baseline:
        """Good at seeds 0 and 1 (is the probe noisy?) and bad at seed 0, in one round."""
        # the idle slots' runs are the search's first (the report lists them so)
        runs = self.rec.timed_batch(m, [(self.good, 0), (self.good, 1), (self.bad, 0), *extra],
                                    ["endpoint"] * 3 + ["search"] * len(extra))
        works = any(run.ok for run in runs[:3])
        self._endpoint(self._spare_seed(m, runs[:2], "good", works), self.good, "good")
        self._endpoint(self._spare_seed(m, runs[2:3], "bad", works), self.bad, "bad")
        for run in runs[3:]:
            self.rec.add(run)
        self._warn_unreported(runs[:3])
        self._say_config_delta(m)
        return self._baseline_now()

    def _spare_seed(self, m: Measurer, runs: list[Run], name: str, works: bool) -> list[Run]:
        """An endpoint's runs, each run that failed on its seed alone (a training that
        diverges on it) replaced by a later seed's, as long as the search would still
        call the endpoint testable (`decide.gives_up`). The failures are
        recorded and the search leaves those seeds out. A probe that has not worked at
        all, or another failure, stands: the endpoint check then names the first."""
        ok = [run for run in runs if run.ok]
        failed = [run for run in runs if not run.ok]
        if not failed or not works or any(
                run.outcome is Outcome.SKIP or run.exit_code == 127 for run in failed):
            return runs
        sha, seed = runs[0].request.commit, max(run.request.seed for run in runs) + 1
        while len(ok) < len(runs) and not decide.gives_up(len(failed), len(ok), endpoint=True):
            last = failed[-1]
            self.progress(f"{name} {sha[:8]} seed {last.request.seed}: {run_failure(last)}; "
                          f"trying seed {seed} (a probe may fail on one seed only)")
            (spare,) = self.rec.timed_batch(m, [(sha, seed)], "endpoint")
            (ok if spare.ok else failed).append(spare)
            seed += 1
        if len(ok) < len(runs):
            return failed
        for run in failed:
            self.rec.add(run)
        return ok

    def _second_seed_at_bad(self, m: Measurer) -> Baseline:
        """The endpoints again, with bad at seeds 0 and 1: seeds that agree at good alone
        do not make "no regression" exact (a probe may turn noisy in the history)."""
        (run,) = self.rec.measure(m, [(self.bad, 1)], role="endpoint")
        self._check_endpoint_run(run, "bad")
        return self._baseline_now()

    def _baseline_now(self, *, noisy: bool = False) -> Baseline:
        """The endpoints as the hunt has them now, with --min-effect or its default."""
        good, bad = self.rec.samples(self.good), self.rec.samples(self.bad)
        min_effect = self.s.min_effect
        if min_effect is None:
            min_effect = decide.default_min_effect(good, bad)
        return Baseline(good, bad, self.s.direction, min_effect, noisy=noisy)

    def _warn_unreported(self, runs: list[Run]) -> None:
        """Name what the endpoints never reported: a mistyped --metric or --pin key would
        otherwise pass silently (the metric left out, the pin never checked)."""
        metrics = {name for run in runs for name in run.metrics}
        config = {key for run in runs for key in run.config}
        for name in self.s.metrics[1:]:
            if name not in metrics:
                self.progress(f"warning: the probe did not report {name!r} at either "
                              f"endpoint (it reported: {', '.join(sorted(metrics))}); "
                              "check the --metric spelling")
        unchecked = [key for key in self.s.pins if key not in config]
        if unchecked:
            held = ", ".join(map(repr, unchecked))
            seen = f"it reports: {', '.join(sorted(config))}" if config else "it reports none"
            self.progress(f"warning: the probe's config has no {held} at the endpoints "
                          f"({seen}), so bisector cannot check the pin holds; check the "
                          "--pin spelling, or have the probe report its effective config")

    def _say_config_delta(self, m: Measurer) -> None:
        """Name the config keys that differ between the endpoints: possible confounders."""
        from .attribute import config_delta
        from .attribution_words import confounder_note

        good, bad = self.rec.runs[self.good][0].config, self.rec.runs[self.bad][0].config
        note = confounder_note(config_delta(good, bad, self.s.pins), self.s.pins)
        if note:
            self.progress(f"{note}; the hunt follows the history as it is, and attribution "
                          "will test these keys at the culprit")

    def _endpoint(self, runs: list[Run], sha: str, name: str) -> Samples:
        for run in runs:
            self._check_endpoint_run(run, name)
            self.rec.add(run)
        seeds = {run.request.seed for run in runs}
        values = {s: v for s, v in self.rec.samples(sha).items() if s in seeds}
        self.progress(f"{name} {sha[:8]}: {self.s.metric} = {fmt_samples(values)}")
        return values

    def _check_endpoint_run(self, run: Run, name: str) -> None:
        hint = f"fix the probe or choose another --{name}"
        if not run.ok and (files := self._files_not_in(run.request.commit)):
            # a probe file beside the user's checkout but not in the commit: the checkout
            # bisector runs the probe in has no such file, whatever the probe's error says
            hint = (f"{' and '.join(files)} {'is' if len(files) == 1 else 'are'} not in "
                    f"{run.request.commit[:8]}: the probe runs in a checkout of each commit, "
                    "so commit it there or give its absolute path")
        require_measurement(run, [self.s.metric], f"the {name} commit", hint)

    def _files_not_in(self, sha: str) -> list[str]:
        """Relative paths in the probe command that exist in the user's checkout only."""
        try:
            words = shlex.split(self.s.probe)
        except ValueError:
            return []
        return [w for w in words if not w.startswith("-") and not Path(w).is_absolute()
                and (self.repo.root / w).is_file() and not self.repo.has_file(sha, w)]

    # -- the answer -------------------------------------------------------------

    def _result(self, status: str, base: Baseline, m: Measurer, steps: list[Step],
                first: SegmentResult) -> dict[str, Any]:
        good = self.rec.samples(self.good)
        bad = self.rec.samples(self.bad)
        regressions = [step_json(self.rec, st.commit, st.parent, self.s.direction,
                               confidence=st.confidence,
                               p_regression=st.result.p_regression) for st in steps]
        # in history order (git lists an ambiguous bisection's candidates in its own)
        candidates = [] if steps else sorted((c for c, _ in first.candidates),
                                             key=lambda c: self.position.get(c, 0))
        return {
            "status": status,
            "metric": self.s.metric,
            "direction": self.s.direction.value,
            "good": endpoint_json(self.repo, self.good, good),
            "bad": endpoint_json(self.repo, self.bad, bad),
            "first_bad": dict(regressions[0]) if regressions else None,
            "candidates": candidates if status in ("ambiguous", "inconclusive") else [],
            "candidate_probabilities": [self._candidate(c, p) for c, p in first.candidates],
            "candidate_span": self._span(first) if candidates else None,
            "pins": dict(self.s.pins),
            "attribution": None,
            "regressions": regressions,
            # the threshold the search applied: a noisy search without --min-effect counts
            # any step it can show (its default is only the bar for looking beside a culprit)
            "min_effect": self.s.min_effect if self.s.min_effect is not None else
            base.min_effect if base.deterministic else None,
            "search": first.reason,
            "probe_runs": m.probe_runs,
            "reused_runs": m.read_back,
            "failed_runs": m.failed_runs,
            "rounds": self.rec.rounds,
            "batches": [{"role": role, "runs": n, "seconds": round(sec, 3)}
                        for role, n, sec in self.rec.batches],
            "hunt_id": self.hunt_id,
            "trail": trail_json(self.rec, (self.good, self.bad), self.position),
            "ranges": self.ranges,
            "bisect_log": "\n".join(log for log in self.bisect_logs if log),
            "report": None,
            **({"notes": [self._aside_note()], "set_aside": self._aside_json()}
               if self.rec.aside else {}),
        }

    def _aside_json(self) -> list[dict[str, Any]]:
        """The runs the noisy search set aside, with their values (in no mean or pair)."""
        value = {(sha, r.request.seed): r.value(self.s.metric)
                 for sha in self.rec.aside for r in self.rec.runs.get(sha, []) if r.ok}
        return [{"commit": sha, "seed": seed, "value": value.get((sha, seed))}
                for sha, seeds in self.rec.aside.items() for seed in sorted(seeds)]

    def _aside_note(self) -> str:
        runs = [f"{sha[:8]} seed {seed}" for sha, seeds in self.rec.aside.items()
                for seed in sorted(seeds)]
        listed = ", ".join(runs[:6]) + (f" and {len(runs) - 6} more" if len(runs) > 6 else "")
        return (f"{len(runs)} run{'s' if len(runs) > 1 else ''} set aside as outliers, far "
                f"from their commit's other runs (a diverged training?): {listed}; they are "
                "in the store and the trail, not in any mean or pair")

    def _candidate(self, sha: str, p: float) -> dict[str, Any]:
        return {"commit": sha, "subject": self.repo.commit_info(sha).subject, "p": p}

    def _span(self, first: SegmentResult) -> dict[str, Any] | None:
        """Where 95% of the culprit's probability lies, when no culprit was verified."""
        if first.span is None:
            return None
        start, end, n, mass = first.span
        return {"first": start, "first_subject": self.repo.commit_info(start).subject,
                "last": end, "last_subject": self.repo.commit_info(end).subject,
                "commits": n, "p": mass}

    def _params(self) -> dict[str, Any]:
        params = asdict(self.s)
        params.update(repo=str(self.repo.root), direction=self.s.direction.value,
                      good_sha=self.good, bad_sha=self.bad,
                      out=str(self.s.out) if self.s.out else None,
                      store=str(self.s.store) if self.s.store else None,
                      summary_md=str(self.s.summary_md) if self.s.summary_md else None,
                      metrics=list(self.s.metrics))
        return params


PRELOAD_AFTER = 0.5  # seconds the first runs must stay in flight for the imports to hide


def _probes_run_long(ex: SignalsStarts, first_wave: int) -> bool:
    """Whether the first runs start and stay in flight PRELOAD_AFTER seconds."""
    return ex.wait_started(first_wave, timeout=1.0) and not ex.wait_idle(PRELOAD_AFTER)
