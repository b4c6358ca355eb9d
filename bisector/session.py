"""Orchestration of `bisector find`: endpoints, then git's bisection, then the answer.

Wires the adapters (git worktree, store, probe via `Measurer`) to the pure
decisions in `decide`. It reports progress through a callback and returns the
SPEC result object as a dict; it never prints and never exits.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import decide
from .decide import Baseline, Samples
from .errors import ProbeFailedAtEndpoint, ProbeProtocolError, UsageError
from .git_ops import BisectWorktree, GitRepo
from .measure import Measurer
from .model import CommitInfo, Outcome, Run, Verdict
from .settings import FindSettings
from .store import Store, default_store_path

Progress = Callable[[str], None]


@dataclass
class CommitRecord:
    """What the hunt learned at one commit, in the order it was tested."""

    info: CommitInfo
    verdict: str
    runs: list[Run] = field(default_factory=list)

    @property
    def sha(self) -> str:
        return self.info.sha

    def samples(self, metric: str) -> dict[int, float]:
        return {r.request.seed: v for r in self.runs if (v := r.value(metric)) is not None}


def open_store(settings_store: Path | None, repo: GitRepo) -> Store:
    return Store(settings_store or default_store_path(repo.common_dir))


class FindSession:
    """One hunt: call `run()` once."""

    def __init__(self, settings: FindSettings, progress: Progress | None = None) -> None:
        self.s = settings
        self.progress = progress or (lambda _msg: None)
        self.repo = GitRepo(settings.repo)
        self.good, self.bad = self.repo.validate_range(settings.good, settings.bad)
        self.trail: list[CommitRecord] = []
        self.position: dict[str, int] = {}  # place in history: good 0, then good..bad
        self.hunt_id = ""

    # -- the hunt ---------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        with open_store(self.s.store, self.repo) as store:
            self.hunt_id = store.start_hunt("find", self._params())
            status = "error"
            try:
                t0 = time.monotonic()
                with ExitStack() as stack:
                    trees = [stack.enter_context(BisectWorktree(self.repo, self.bad))
                             for _ in range(self.s.jobs)]
                    m = Measurer(store, trees, self.s.probe, hunt_id=self.hunt_id,
                                 artifacts_root=store.path.parent / "artifacts",
                                 pins=self.s.pins, timeout=self.s.timeout)
                    t1 = time.monotonic()
                    result = self._hunt(trees[0], m)
                    t2 = time.monotonic()
                status = result["status"]
                out_dir = self.s.out or Path("reports") / self.hunt_id
                result["report"] = str(out_dir / "index.html")
                # Seconds: worktrees made, hunt (probes included), worktrees removed.
                result["timing"] = {"setup": t1 - t0, "hunt": t2 - t1,
                                    "cleanup": time.monotonic() - t2}
                store.finish_hunt(self.hunt_id, status, result)
                t3 = time.monotonic()
                self._render(store, out_dir, result)
                result["timing"]["report"] = time.monotonic() - t3
                return result
            except KeyboardInterrupt:
                status = "interrupted"
                raise
            finally:
                if status in ("error", "interrupted"):
                    store.finish_hunt(self.hunt_id, status, {"status": status})

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
        base = self._endpoints(m)
        seeds = [0] if base.deterministic else list(range(self.s.repeats))
        if not base.regressed:
            self.progress(f"no regression: {self.s.metric} moved by "
                          f"{-base.regression:+.4g} (min effect {base.min_effect:.4g})")
            return self._result("no-regression", base, m, None, ())
        candidates = self.repo.rev_list(self.good, self.bad, first_parent=self.s.first_parent)
        self.position = {sha: i for i, sha in enumerate([self.good, *candidates])}
        self.progress(f"bisecting {len(candidates)} commits; {self.s.metric} "
                      f"{decide.mean(base.good):.4g} -> {decide.mean(base.bad):.4g}")
        step = wt.start(self.bad, self.good, first_parent=self.s.first_parent)
        while step.next_commit is not None:
            record = self._test(m, step.next_commit, seeds, base)
            self._report_step(record, step.remaining)
            step = wt.mark(record.verdict, record.sha)
        elapsed = time.monotonic() - started
        self.progress(f"done in {elapsed:.1f}s, {m.probe_runs} probe runs "
                      f"({m.reused} reused from the store)")
        if step.first_bad is None:
            return self._result("ambiguous", base, m, None, step.candidates)
        result = self._result("found", base, m, step.first_bad, (), seeds=seeds)
        if self.s.attribute:
            self._attribute(m, result, seeds, base)
        return result

    def _attribute(self, m: Measurer, result: dict[str, Any], seeds: list[int],
                   base: Baseline) -> None:
        """Split the culprit's step between its config delta and its code (in place)."""
        from .attribution import attribute

        fb = result["first_bad"]
        self.progress(f"attributing the step at {fb['commit'][:8]} to config and code")
        att = attribute(m, good=fb["parent"], bad=fb["commit"], metric=self.s.metric,
                        direction=self.s.direction, seeds=seeds, pins=self.s.pins,
                        min_effect=base.min_effect, max_runs=self.s.max_runs,
                        progress=self.progress)
        result["attribution"] = att
        result["regressions"][0]["attribution"] = {"verdict": att["verdict"],
                                                   "deltas": att["deltas"]}
        result["probe_runs"], result["reused_runs"] = m.probe_runs, m.reused

    def _endpoints(self, m: Measurer) -> Baseline:
        """Measure good and bad; seed 0 and 1 at good tell whether the probe is noisy."""
        good = self._endpoint(m, self.good, "good", [0, 1])
        bad = self._endpoint(m, self.bad, "bad", [0])
        if not decide.seed_insensitive(good):
            seeds = list(range(max(self.s.repeats, 2)))
            good = self._endpoint(m, self.good, "good", seeds)
            bad = self._endpoint(m, self.bad, "bad", seeds)
        self._say_config_delta(m)
        min_effect = self.s.min_effect
        if min_effect is None:
            min_effect = decide.default_min_effect(good, bad)
        return Baseline(good, bad, self.s.direction, min_effect)

    def _say_config_delta(self, m: Measurer) -> None:
        """Name the config keys that differ between the endpoints: possible confounders."""
        from .attribute import config_delta, confounder_note

        good = m.measure(self.good, 0, role="endpoint-good").config
        bad = m.measure(self.bad, 0, role="endpoint-bad").config
        note = confounder_note(config_delta(good, bad, self.s.pins), self.s.pins)
        if note:
            self.progress(f"{note}; the hunt follows the history as it is, and attribution "
                          "will test these keys at the culprit")

    def _endpoint(self, m: Measurer, sha: str, name: str, seeds: list[int]) -> Samples:
        values: dict[int, float] = {}
        for seed in seeds:
            run = m.measure(sha, seed, role=f"endpoint-{name}")
            self._check_endpoint_run(run, name)
            values[seed] = run.metrics[self.s.metric]
        self.progress(f"{name} {sha[:8]}: {self.s.metric} = {_fmt_samples(values)}")
        return values

    def _check_endpoint_run(self, run: Run, name: str) -> None:
        sha = run.request.commit[:8]
        if run.outcome is Outcome.OK:
            if self.s.metric not in run.metrics:
                reported = ", ".join(sorted(run.metrics)) or "none"
                raise ProbeProtocolError(f"the probe did not report metric {self.s.metric!r} "
                                         f"at {sha}; it reported: {reported}")
            return
        if run.outcome is Outcome.INVALID:
            raise ProbeProtocolError(f"at the {name} commit {sha}: {run.error}")
        if "not found" in run.error and run.exit_code == 127:
            raise UsageError(run.error)
        if run.outcome is Outcome.SKIP:
            raise ProbeFailedAtEndpoint(
                f"the probe says the {name} commit {sha} cannot be tested (exit 125): "
                "choose another --" + name, run.output_tail)
        raise ProbeFailedAtEndpoint(
            f"the probe fails at the {name} commit {sha}: {run.error}; fix the probe or "
            "choose another --" + name, run.output_tail)

    def _test(self, m: Measurer, sha: str, seeds: list[int], base: Baseline) -> CommitRecord:
        info = self.repo.commit_info(sha)
        runs: list[Run] = []
        verdict = Verdict.SKIP
        for seed in seeds:
            run = m.measure(sha, seed)
            runs.append(run)
            if not run.ok or self.s.metric not in run.metrics:
                break
        else:
            samples = {r.request.seed: r.metrics[self.s.metric] for r in runs}
            verdict = decide.classify(samples, base)
        record = CommitRecord(info, verdict.value, runs)
        self.trail.append(record)
        return record

    def _report_step(self, record: CommitRecord, remaining: int | None) -> None:
        samples = record.samples(self.s.metric)
        value = _fmt_samples(samples) if samples else _why_untestable(record.runs)
        left = "" if remaining is None else f"{remaining} left to test after this"
        self.progress(f"{record.sha[:8]} {_clip(record.info.subject)}: {self.s.metric} = {value}"
                      f" -> {record.verdict}" + (f" ({left})" if left else ""))

    # -- the answer -------------------------------------------------------------

    def _result(self, status: str, base: Baseline, m: Measurer, first_bad: str | None,
                candidates: tuple[str, ...], seeds: list[int] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = {
            "status": status,
            "metric": self.s.metric,
            "direction": self.s.direction.value,
            "good": self._endpoint_json(self.good, base.good),
            "bad": self._endpoint_json(self.bad, base.bad),
            "first_bad": None,
            "candidates": list(candidates),
            "pins": dict(self.s.pins),
            "attribution": None,
            "regressions": [],
            "min_effect": base.min_effect,
            "probe_runs": m.probe_runs,
            "reused_runs": m.reused,
            "hunt_id": self.hunt_id,
            "trail": [dict(_record_json(r, self.s.metric), position=self.position.get(r.sha))
                      for r in self.trail],
            "report": None,
        }
        if first_bad is not None and seeds is not None:
            result["first_bad"] = self._first_bad(m, first_bad, seeds, base)
            fb = result["first_bad"]
            result["regressions"] = [{
                "commit": fb["commit"], "subject": fb["subject"],
                "effect": fb["mean"] - fb["parent_mean"], "ci": fb["ci"],
                "confidence": fb["confidence"], "attribution": None}]
        return result

    def _first_bad(self, m: Measurer, sha: str, seeds: list[int], base: Baseline
                   ) -> dict[str, Any]:
        """The culprit next to its first parent, for every metric the probe reported."""
        parents = self.repo.parents(sha)
        parent = parents[0] if parents else self.good
        culprit_runs = [m.measure(sha, seed, role="verify") for seed in seeds]
        parent_runs = [m.measure(parent, seed, role="verify") for seed in seeds]
        culprit = {r.request.seed: r.metrics[self.s.metric] for r in culprit_runs if r.ok}
        before = {r.request.seed: r.metrics[self.s.metric] for r in parent_runs if r.ok}
        step = decide.paired_step(before, culprit, self.s.direction)
        info = self.repo.commit_info(sha)
        return {
            "commit": sha,
            "subject": info.subject,
            "author": info.author,
            "date": info.date,
            "parent": parent,
            "mean": decide.mean(culprit),
            "parent_mean": decide.mean(before),
            "n": len(culprit),
            "ci": list(step.ci),
            "confidence": step.confidence,
            "metrics": _all_metrics(culprit_runs, parent_runs),
        }

    def _endpoint_json(self, sha: str, values: Mapping[int, float]) -> dict[str, Any]:
        info = self.repo.commit_info(sha)
        return {"commit": sha, "mean": decide.mean(values), "n": len(values),
                "sd": decide.stdev(values), "subject": info.subject, "author": info.author,
                "date": info.date}

    def _params(self) -> dict[str, Any]:
        params = asdict(self.s)
        params.update(repo=str(self.repo.root), direction=self.s.direction.value,
                      good_sha=self.good, bad_sha=self.bad,
                      out=str(self.s.out) if self.s.out else None,
                      store=str(self.s.store) if self.s.store else None,
                      summary_md=str(self.s.summary_md) if self.s.summary_md else None,
                      metrics=list(self.s.metrics))
        return params


def _all_metrics(after: list[Run], before: list[Run]) -> dict[str, dict[str, float]]:
    names = sorted({k for r in after + before if r.ok for k in r.metrics})
    out = {}
    for name in names:
        a = [v for r in after if (v := r.value(name)) is not None]
        b = [v for r in before if (v := r.value(name)) is not None]
        if a and b:
            out[name] = {"mean": math.fsum(a) / len(a), "parent_mean": math.fsum(b) / len(b)}
    return out




def _record_json(record: CommitRecord, metric: str) -> dict[str, Any]:
    samples = record.samples(metric)
    return {"commit": record.sha, "subject": record.info.subject, "author": record.info.author,
            "date": record.info.date, "verdict": record.verdict,
            "n": len(record.runs), "mean": decide.mean(samples) if samples else None,
            "values": [samples[k] for k in sorted(samples)],
            "reason": "" if samples else _why_untestable(record.runs),
            "run_ids": [r.run_id for r in record.runs]}


def _why_untestable(runs: list[Run]) -> str:
    last = runs[-1] if runs else None
    if last is None:
        return "not run"
    if last.outcome is Outcome.SKIP:
        return "untestable (exit 125)"
    return f"untestable: {last.error or last.outcome.value}"


def _fmt_samples(values: Mapping[int, float]) -> str:
    if len(values) == 1:
        return f"{next(iter(values.values())):.4g}"
    return f"{decide.mean(values):.4g} (mean of {len(values)})"


def _clip(text: str, width: int = 48) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
