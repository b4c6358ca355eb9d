"""`bisector attribute`: split the change between two commits into config deltas and code.

Orchestration only, like `session.FindSession`: a worktree, the store, a
measurer, then `attribution.attribute`; the result is stored as a hunt of kind
"attribute" and rendered as a report.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from . import decide
from .attribution import attribute
from .errors import UsageError
from .git_ops import BisectWorktree, GitRepo
from .measure import Measurer
from .model import Direction
from .store import Store, default_store_path


def attribute_between(
    repo_path: Path, good_rev: str | None, bad_rev: str, *, metric: str,
    direction: Direction, probe: str, pins: Mapping[str, Any], min_effect: float | None,
    max_runs: int | None, repeats: int, timeout: float | None, out: Path | None,
    store_path: Path | None, progress: Callable[[str], None],
) -> dict[str, Any]:
    """Attribute metric(bad) - metric(good); good defaults to bad's first parent."""
    repo = GitRepo(repo_path)
    bad = repo.resolve(bad_rev)
    if good_rev is None:
        parents = repo.parents(bad)
        if not parents:
            raise UsageError(f"{bad[:8]} has no parent: pass --good REV")
        good = parents[0]
    else:
        good = repo.resolve(good_rev)
        if good == bad:
            raise UsageError("--good and --bad are the same commit: pass two different ones")
    params = {"repo": str(repo.root), "good": good_rev or f"{bad_rev}^", "bad": bad_rev,
              "good_sha": good, "bad_sha": bad, "metrics": [metric], "probe": probe,
              "direction": direction.value, "pins": dict(pins), "min_effect": min_effect,
              "max_runs": max_runs, "repeats": repeats, "timeout": timeout}
    with Store(store_path or default_store_path(repo.common_dir)) as store:
        hunt_id = store.start_hunt("attribute", params)
        status = "error"
        try:
            t0 = time.monotonic()
            with BisectWorktree(repo, bad) as wt:
                m = Measurer(store, wt, probe, hunt_id=hunt_id,
                             artifacts_root=store.path.parent / "artifacts", pins=pins,
                             timeout=timeout)
                att = attribute(m, good=good, bad=bad, metric=metric, direction=direction,
                                seeds=None, pins=pins, min_effect=min_effect,
                                max_runs=max_runs, repeats=repeats, progress=progress)
            status = "attributed"
            result = _result(repo, good, bad, metric, direction, pins, att, m, hunt_id)
            result["timing"] = {"hunt": time.monotonic() - t0}
            out_dir = out or Path("reports") / hunt_id
            result["report"] = str(out_dir / "index.html")
            store.finish_hunt(hunt_id, status, result)
            from .report import render_report
            render_report(store, hunt_id, out_dir)
            return result
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            if status != "attributed":
                store.finish_hunt(hunt_id, status, {"status": status})


def _result(repo: GitRepo, good: str, bad: str, metric: str, direction: Direction,
            pins: Mapping[str, Any], att: dict[str, Any], m: Measurer, hunt_id: str
            ) -> dict[str, Any]:
    def end(sha: str, values: list[float]) -> dict[str, Any]:
        info = repo.commit_info(sha)
        samples = dict(enumerate(values))
        return {"commit": sha, "mean": decide.mean(samples), "n": len(values),
                "sd": decide.stdev(samples), "subject": info.subject, "author": info.author,
                "date": info.date}

    good_values = [r.metrics[metric] for r in _plain_runs(m, good, att["seeds"])]
    bad_values = [r.metrics[metric] for r in _plain_runs(m, bad, att["seeds"])]
    return {"status": "attributed", "metric": metric, "direction": direction.value,
            "good": end(good, good_values), "bad": end(bad, bad_values), "first_bad": None,
            "candidates": [], "pins": dict(pins), "attribution": att, "regressions": [],
            "probe_runs": m.probe_runs, "reused_runs": m.read_back, "hunt_id": hunt_id,
            "trail": [], "report": None}


def _plain_runs(m: Measurer, sha: str, seeds: list[int]) -> list[Any]:
    """The stored runs without overrides (beyond pins) at `sha`: no new probe runs."""
    runs = [m.store.reusable_run(m.request(sha, seed)) for seed in seeds]
    return [r for r in runs if r is not None and r.ok]
