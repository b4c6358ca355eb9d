"""The parts of find's result object (SPEC section 5) built from what the hunt recorded.

Pure formatting of the recorder's runs and verdicts: a culprit beside its parent, an
endpoint and the search trail. It runs nothing and decides nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from . import decide
from .decide import Samples
from .git_ops import GitRepo
from .model import Direction
from .searchers import Range, Recorder, TrailEntry, why_untestable


def step_json(rec: Recorder, commit: str, parent: str, direction: Direction, *,
              confidence: float, p_regression: float | None) -> dict[str, Any]:
    """The culprit next to its first parent, for every metric the probe reported.

    Means, n, effect and interval are all on the seeds both commits ran, so that
    mean - parent_mean is the paired effect (a seed run on one side only would
    move a mean by that seed's own offset).
    """
    before, after = _on_shared_seeds(rec.samples(parent), rec.samples(commit))
    paired = decide.paired_step(before, after, direction)
    info = rec.repo.commit_info(commit)
    return {
        "commit": commit, "subject": info.subject, "author": info.author,
        "date": info.date, "parent": parent,
        "mean": decide.mean(after), "parent_mean": decide.mean(before), "n": paired.n,
        "effect": paired.effect, "ci": list(paired.ci),
        "confidence": confidence, "p_regression": p_regression,
        "step_confidence": paired.confidence,
        "metrics": _all_metrics(rec, parent, commit), "attribution": None,
    }


def endpoint_json(repo: GitRepo, sha: str, values: Mapping[int, float]) -> dict[str, Any]:
    info = repo.commit_info(sha)
    return {"commit": sha, "mean": decide.mean(values), "n": len(values),
            "sd": decide.stdev(values), "subject": info.subject, "author": info.author,
            "date": info.date}


def trail_json(rec: Recorder, whole: Range, position: Mapping[str, int]
               ) -> list[dict[str, Any]]:
    """Every verdict of every search, in the order given, each with its range.

    A commit tested but never judged (possible only if a search stopped early)
    is listed last under the whole range, with its runs.
    """
    judged = {e.record.sha for e in rec.trail}
    rest = [TrailEntry(r, whole, r.verdict, r.p_bad, r.reason, list(r.runs))
            for r in rec.records.values() if r.sha not in judged]
    return [_entry_json(rec.metric, e, position, rec.aside.get(e.record.sha, set()))
            for e in [*rec.trail, *rest]]


def _entry_json(metric: str, entry: TrailEntry, position: Mapping[str, int],
                aside: set[int]) -> dict[str, Any]:
    record, runs = entry.record, entry.runs
    samples = {r.request.seed: v for r in runs if (v := r.value(metric)) is not None}
    outliers = [samples.pop(k) for k in sorted(aside & samples.keys())]
    good, bad = entry.range
    return {"commit": record.sha, "subject": record.info.subject,
            "author": record.info.author, "date": record.info.date,
            "range": f"{good[:8]}..{bad[:8]}",
            "verdict": entry.verdict, "n": len(runs),
            "mean": decide.mean(samples) if samples else None,
            "values": [samples[k] for k in sorted(samples)],
            **({"set_aside": outliers} if outliers else {}),
            "p_bad": entry.p_bad,
            "reason": entry.reason or ("" if samples else why_untestable(runs)),
            "run_ids": [r.run_id for r in runs],
            "position": position.get(record.sha)}


def _on_shared_seeds(before: Samples, after: Samples) -> tuple[Samples, Samples]:
    """Both sides cut to the seeds they share (unchanged when they share none)."""
    shared = before.keys() & after.keys()
    if not shared:
        return before, after
    return ({s: v for s, v in before.items() if s in shared},
            {s: v for s, v in after.items() if s in shared})


def _all_metrics(rec: Recorder, before: str, after: str) -> dict[str, dict[str, float]]:
    """Every metric's mean at the culprit and its parent, on the seeds both ran."""
    runs_of = {sha: [r for r in rec.runs.get(sha, [])
                     if r.ok and r.request.seed not in rec.aside.get(sha, ())]
               for sha in (before, after)}
    names = sorted({k for runs in runs_of.values() for r in runs for k in r.metrics})
    out = {}
    for name in names:
        b, a = _on_shared_seeds(
            {r.request.seed: v for r in runs_of[before] if (v := r.value(name)) is not None},
            {r.request.seed: v for r in runs_of[after] if (v := r.value(name)) is not None})
        if a and b:
            out[name] = {"mean": math.fsum(a.values()) / len(a),
                         "parent_mean": math.fsum(b.values()) / len(b)}
    return out
