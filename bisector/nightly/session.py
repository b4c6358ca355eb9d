"""`bisector nightly`: measure a revision, compare it with the last good baseline, hunt.

Orchestration: it wires the store, a worktree and the probe (through `Measurer`) to
the paired comparison in `compare`, and runs one `FindSession` per regressed metric
(its endpoints' runs are already stored, so the hunt starts from them). It records
the night as a hunt of kind "nightly" (see `series`), writes the CI files through
`report.nightly` and `junit`, and returns a result dict; progress goes through a
callback. It never prints and never exits.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import decide
from ..decide import Samples
from ..errors import BisectorError, ProbeFailedAtEndpoint, UnknownRevision, UsageError
from ..git_ops import BisectWorktree, GitRepo
from ..measure import Measurer, require_measurement
from ..model import Direction, Run
from ..settings import FindSettings
from ..store import Store, default_store_path
from .compare import Check, check_sentence, compare
from .series import ADVANCING, last_baseline, series_key, stored_nights

Progress = Callable[[str], None]


@dataclass(frozen=True)
class NightlySettings:
    """One `bisector nightly` invocation, after the CLI and the config file are merged."""

    repo: Path
    metrics: tuple[str, ...]
    directions: Mapping[str, Direction]
    probe: str
    rev: str = "HEAD"
    baseline: str | None = None  # overrides the stored baseline
    accept: bool = False  # rev becomes the baseline, compared with nothing
    pins: Mapping[str, Any] = field(default_factory=dict)
    min_effects: Mapping[str, float] = field(default_factory=dict)  # absent: the default
    confidence: float = 0.99
    repeats: int = 3
    jobs: int = 1
    timeout: float | None = None
    out: Path | None = None
    store: Path | None = None
    summary_md: Path | None = None
    junit: Path | None = None
    attribute: bool = True
    first_parent: bool = False


class _LazyWorktree:
    """A worktree made on the first checkout: a night served from the store makes none."""

    def __init__(self, repo: GitRepo, stack: ExitStack) -> None:
        self.repo, self.stack = repo, stack
        self.tree: BisectWorktree | None = None
        self.path = Path()

    def checkout(self, sha: str) -> None:
        if self.tree is None:
            self.tree = self.stack.enter_context(BisectWorktree(self.repo, sha))
        self.tree.checkout(sha)
        self.path = self.tree.path


class NightlySession:
    """One night: call `run()` once."""

    def __init__(self, settings: NightlySettings, progress: Progress | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if not settings.metrics:
            raise UsageError("--metric NAME is required: the metrics the probe reports")
        self.s = settings
        self.progress = progress or (lambda _msg: None)
        self.clock = clock
        self.repo = GitRepo(settings.repo)
        self.rev = self.repo.resolve(settings.rev)
        self.given_baseline = self.repo.resolve(settings.baseline) if settings.baseline else None
        self.series = series_key(settings.probe, settings.pins)
        self.hunt_id = ""
        self.out = settings.out

    def run(self) -> dict[str, Any]:
        path = self.s.store or default_store_path(self.repo.common_dir)
        with Store(path, clock=self.clock) as store:
            self.hunt_id = store.start_hunt("nightly", self._params())
            self.out = self.s.out or Path("reports") / self.hunt_id
            status = "error"
            try:
                result = self._measure_and_compare(store)
                if result["status"] == "regression":
                    self._hunt(result, store.path)
                status = result["status"]
                result["report"] = self._write_out_dir(result)
                store.finish_hunt(self.hunt_id, status, result)
                self._write_page(store, result)
            except ProbeFailedAtEndpoint as exc:
                status = "probe-failed"
                result = self._failure(exc)
                result["report"] = self._write_out_dir(result)
                store.finish_hunt(self.hunt_id, status, result)
                self._write_page(store, result)
                write_ci_files(result, self.s.summary_md, self.s.junit)
                exc.result = result  # `--json` prints the night, not a bare error
                raise
            except KeyboardInterrupt:
                status = "interrupted"
                raise
            finally:
                if status in ("error", "interrupted"):
                    store.finish_hunt(self.hunt_id, status, {"status": status})
        write_ci_files(result, self.s.summary_md, self.s.junit)
        return result

    def _measure_and_compare(self, store: Store) -> dict[str, Any]:
        with ExitStack() as stack:
            trees = [_LazyWorktree(self.repo, stack) for _ in range(self.s.jobs)]
            m = Measurer(store, trees, self.s.probe, hunt_id=self.hunt_id,
                         artifacts_root=store.path.parent / "artifacts", pins=self.s.pins,
                         timeout=self.s.timeout)
            self._measure(m, self.rev, [0], "revision")  # fails fast when the probe is broken
            base_sha, source = self._baseline(store)
            # Seeds 0 and 1 at the revision (and at the baseline, stored from its own night)
            # tell whether the probe is noisy; a noisy probe gets --repeats paired seeds.
            rev = self._measure(m, self.rev, [0, 1], "revision")
            base = None if base_sha in (None, self.rev) else self._measure(
                m, str(base_sha), [0, 1], "baseline")
            if not all(decide.seed_insensitive(v) for pair in (rev, base or {})
                       for v in pair.values()):
                seeds = list(range(max(self.s.repeats, 2)))
                rev = self._measure(m, self.rev, seeds, "revision")
                if base is not None:
                    base = self._measure(m, str(base_sha), seeds, "baseline")
            if base is None:
                status = "baseline" if base_sha is None else "no-regression"
                if source != "option":
                    self.progress(f"{self.rev[:8]}: recorded as the baseline of the series "
                                  f"{self.series}")
                return self._result(status, base_sha, source, rev, [], m)
            assert base_sha is not None
            checks = self._compare(base, rev)
            # A change past the min effect that the seeds cannot yet show: more seeds,
            # doubling up to four times --repeats (3 seeds missed drops of 4-10 sd)
            n = len(next(iter(rev.values())))
            cap = 4 * max(self.s.repeats, 2)
            while n > 2 and n < cap and any(c.undecided for c in checks) and not any(
                    c.regressed for c in checks):
                n = min(2 * n, cap)
                self.progress(f"undecided on {n // 2} paired seeds: measuring {n}")
                rev = self._measure(m, self.rev, list(range(n)), "revision")
                base = self._measure(m, str(base_sha), list(range(n)), "baseline")
                checks = self._compare(base, rev)
        for c in checks:
            self.progress(check_sentence(c, base_sha, self.rev))
        status = "regression" if any(c.regressed for c in checks) else "no-regression"
        return self._result(status, base_sha, source, rev, checks, m)

    def _compare(self, base: Mapping[str, Samples], rev: Mapping[str, Samples]
                 ) -> list[Check]:
        min_effects = {n: self.s.min_effects.get(n, decide.default_min_effect(base[n], rev[n]))
                       for n in self.s.metrics}
        return compare(base, rev, self.s.directions, min_effects, 1.0 - self.s.confidence)

    def _baseline(self, store: Store) -> tuple[str | None, str]:
        if self.given_baseline is not None:
            # A one-off comparison: the night never becomes (or moves) the series baseline.
            self.progress(f"compared with {self.given_baseline[:8]} given by --baseline; "
                          f"the series baseline is unchanged")
            return self.given_baseline, "option"
        night = last_baseline(stored_nights(store, self.series), self.s.metrics)
        if self.s.accept:
            was = "" if night is None else f" (it was {night.commit[:8]})"
            self.progress(f"--accept: {self.rev[:8]} becomes the baseline without a "
                          f"comparison{was}")
            return None, "accept"
        if night is None:
            self.progress("no stored baseline for this probe and these metrics: this night "
                          "records the first one")
            return None, "none"
        try:
            self.repo.resolve(night.commit)
        except UnknownRevision:  # history rewritten under the series (a force-push, a gc)
            self.progress(f"warning: the baseline {night.commit[:8]} (night {night.hunt_id}) is "
                          "no longer in this repository: this night records a new baseline")
            return None, "none"
        self.progress(f"baseline {night.commit[:8]} from the night {night.hunt_id}")
        return night.commit, "store"

    def _measure(self, m: Measurer, sha: str, seeds: list[int], role: str
                 ) -> dict[str, dict[int, float]]:
        runs = m.measure_many([(sha, seed) for seed in seeds], role=f"nightly-{role}")
        for run in runs:
            self._check_run(run, "baseline" if role == "baseline" else "revision")
        return {name: {r.request.seed: float(r.metrics[name]) for r in runs}
                for name in self.s.metrics}

    def _check_run(self, run: Run, name: str) -> None:
        hint = "fix the probe" if name == "revision" else "pass another --baseline"
        require_measurement(run, self.s.metrics, f"the {name}", hint)

    def _hunt(self, result: dict[str, Any], store_path: Path) -> None:
        """Bisect baseline..revision for every regressed metric; the stored runs are reused."""
        from ..report.nightly import metric_folder
        from ..session import FindSession

        assert self.out is not None
        taken: set[str] = set()
        for entry in result["checks"]:
            if not entry["regressed"]:
                continue
            metric = entry["metric"]
            others = tuple(n for n in self.s.metrics if n != metric)
            settings = FindSettings(
                repo=self.s.repo, good=result["baseline"]["commit"], bad=self.rev,
                metrics=(metric, *others), direction=self.s.directions[metric],
                probe=self.s.probe, pins=self.s.pins, min_effect=entry["min_effect"],
                jobs=self.s.jobs, timeout=self.s.timeout,
                out=self.out / metric_folder(metric, taken),
                attribute=self.s.attribute, first_parent=self.s.first_parent,
                repeats=self.s.repeats, store=store_path)
            self.progress(f"hunting the regression of {metric} in "
                          f"{settings.good[:8]}..{self.rev[:8]}")
            try:
                found = FindSession(settings, self._prefixed(metric)).run()
            except BisectorError as exc:
                found = {"status": "error", "metric": metric, "error": str(exc)}
            entry["hunt"] = found
            result["probe_runs"] += int(found.get("probe_runs") or 0)
            result["reused_runs"] += int(found.get("reused_runs") or 0)
            for reg in found.get("regressions") or []:
                result["regressions"].append({"metric": metric, **reg})

    def _prefixed(self, metric: str) -> Progress:
        return lambda msg: self.progress(f"[{metric}] {msg}")

    # -- the result -----------------------------------------------------------------------

    def _result(self, status: str, base_sha: str | None, source: str,
                rev: Mapping[str, Samples], checks: list[Check], m: Measurer) -> dict[str, Any]:
        first = self.s.metrics[0]
        info = self.repo.commit_info(self.rev)
        revision = {"commit": self.rev, "subject": info.subject, "author": info.author,
                    "date": info.date}
        baseline = None
        if base_sha is not None:
            b = self.repo.commit_info(base_sha)
            baseline = {"commit": base_sha, "subject": b.subject, "author": b.author,
                        "date": b.date, "source": source}
        entries = []
        for c in checks:
            entries.append({
                "metric": c.metric, "direction": c.direction.value,
                "baseline_mean": decide.mean(c.baseline), "mean": decide.mean(c.revision),
                "n": c.step.n, "effect": c.step.effect, "ci": list(c.step.ci),
                "p_value": c.p_value, "p_adjusted": c.p_adjusted, "min_effect": c.min_effect,
                "regressed": c.regressed, "sentence": check_sentence(c, str(base_sha), self.rev),
                "hunt": None})
        if not checks:  # a first night: nothing to compare with
            for name in self.s.metrics:
                mean = decide.mean(rev[name])
                how = "accepted as the baseline (--accept)" if source == "accept" else \
                    "recorded as the baseline"
                sentence = (f"{name} = {mean:.4g} at {self.rev[:8]}, {how}."
                            if status == "baseline" else
                            f"No regression of {name}: {self.rev[:8]} is the baseline.")
                entries.append({"metric": name, "direction": self.s.directions[name].value,
                                "baseline_mean": None if status == "baseline" else mean,
                                "mean": mean, "n": len(rev[name]), "effect": None, "ci": None,
                                "p_value": None, "p_adjusted": None, "min_effect": None,
                                "regressed": False, "sentence": sentence, "hunt": None})
        return {
            "kind": "nightly",
            "status": status,
            "metric": first,
            "metrics": list(self.s.metrics),
            "direction": self.s.directions[first].value,
            "revision": revision,
            "baseline": baseline,
            # SPEC-shaped endpoints, so `bisector runs` and `report` read a night like a hunt
            "good": None if baseline is None else {
                "commit": base_sha, "subject": baseline["subject"],
                "mean": entries[0]["baseline_mean"], "n": entries[0]["n"]},
            "bad": {"commit": self.rev, "subject": info.subject, "mean": entries[0]["mean"],
                    "n": entries[0]["n"]},
            "first_bad": None,
            "checks": entries,
            "measurements": {n: _measurement(rev[n]) for n in self.s.metrics},
            "regressions": [],
            # --baseline is a one-off comparison: only a night against the stored baseline
            # (or the first night of a series) may move it
            "baseline_advanced": (status in ADVANCING and source != "option"
                                  and not any(c.undecided for c in checks)),
            "confidence": self.s.confidence,
            "series": self.series,
            "pins": dict(self.s.pins),
            "probe_runs": m.probe_runs,
            "reused_runs": m.read_back,
            "hunt_id": self.hunt_id,
            "measured_at": self.clock(),
            "report": None,
        }

    def _failure(self, exc: ProbeFailedAtEndpoint) -> dict[str, Any]:
        info = self.repo.commit_info(self.rev)
        return {
            "kind": "nightly", "status": "probe-failed", "error": str(exc),
            "output_tail": exc.output_tail, "metric": self.s.metrics[0],
            "metrics": list(self.s.metrics),
            "revision": {"commit": self.rev, "subject": info.subject, "author": info.author,
                         "date": info.date},
            "baseline": None, "checks": [
                {"metric": n, "direction": self.s.directions[n].value, "regressed": False,
                 "error": str(exc), "sentence": str(exc), "hunt": None}
                for n in self.s.metrics],
            "measurements": {}, "regressions": [], "baseline_advanced": False,
            "series": self.series, "pins": dict(self.s.pins), "hunt_id": self.hunt_id,
            "measured_at": self.clock(), "report": None}

    def _write_out_dir(self, result: dict[str, Any]) -> str | None:
        """summary.md and nightly.json in --out (and, once stored, the night's page, see
        `_write_page`): always when given, else on a regression."""
        if self.out is None or (self.s.out is None and result["status"] != "regression"):
            return None
        from ..report.nightly import nightly_markdown

        self.out.mkdir(parents=True, exist_ok=True)
        summary = self.out / "summary.md"
        result["report"] = str(summary)  # before nightly.json is written, so it says so too
        summary.write_text(nightly_markdown(result), encoding="utf-8")
        (self.out / "nightly.json").write_text(json.dumps(result, indent=2) + "\n",
                                               encoding="utf-8")
        return str(summary)

    def _write_page(self, store: Store, result: Mapping[str, Any]) -> None:
        """--out/index.html: the night's page, linking each metric's report beside it."""
        if result["report"] is not None and self.out is not None:
            from ..report import render_report

            render_report(store, self.hunt_id, self.out)

    def _params(self) -> dict[str, Any]:
        return {
            "repo": str(self.repo.root), "rev": self.s.rev, "rev_sha": self.rev,
            "bad_sha": self.rev, "baseline": self.s.baseline, "accept": self.s.accept,
            "series": self.series,
            "probe": self.s.probe, "pins": dict(self.s.pins), "metrics": list(self.s.metrics),
            "directions": {n: d.value for n, d in self.s.directions.items()},
            "min_effects": dict(self.s.min_effects), "confidence": self.s.confidence,
            "repeats": self.s.repeats, "jobs": self.s.jobs, "timeout": self.s.timeout,
            "out": str(self.s.out) if self.s.out else None,
            "store": str(self.s.store) if self.s.store else None,
            "attribute": self.s.attribute, "first_parent": self.s.first_parent}


def write_ci_files(result: dict[str, Any], summary_md: Path | None, junit: Path | None) -> None:
    """The Markdown step summary and the JUnit file, when asked for."""
    if summary_md is not None:
        from ..report.nightly import nightly_markdown

        summary_md.parent.mkdir(parents=True, exist_ok=True)
        summary_md.write_text(nightly_markdown(result), encoding="utf-8")
    if junit is not None:
        from ..junit import junit_xml

        junit.parent.mkdir(parents=True, exist_ok=True)
        junit.write_text(junit_xml(result), encoding="utf-8")


def _measurement(values: Samples) -> dict[str, Any]:
    seeds = sorted(values)
    return {"mean": decide.mean(values), "sd": decide.stdev(values), "n": len(values),
            "seeds": seeds, "values": [values[s] for s in seeds]}
