"""The report's view model: a stored hunt turned into plain, display-ready values.

Pure: it reads a Hunt, its (role, Run) pairs and the artifact links, and returns
frozen dataclasses of strings and numbers for the template and the plots. It
never writes files, runs anything or marks text safe: every string here is
untrusted and the template escapes it. Missing optional pieces (no culprit, no
attribution, no per-commit probabilities yet) become empty values, not errors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bisector.model import Direction, Run, canonical_json
from bisector.summary import (
    candidate_probabilities,
    confidence_text,
    held_text,
    regression_odds,
    runs_phrase,
    span_text,
    step_effect,
    verdict_sentence,
)

from .artifacts import ArtifactLink
from .attribution import AttributionView, attribution_view
from .commands import find_command, probe_command
from .format import (
    DASH,
    finite,
    interval,
    num,
    obj,
    short_date,
    signed,
    step_spread,
    value_text,
    when,
)
from .history import MIN_SPREAD_RUNS, MetricHistory, histories, plain_run, spread_interval

if TYPE_CHECKING:
    from bisector.store import Hunt

# --- values ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CommitRef:
    sha: str
    subject: str = ""
    author: str = ""
    date: str = ""

    @property
    def short(self) -> str:
        return self.sha[:8]

    @property
    def when(self) -> str:
        return short_date(self.date) if self.date else ""


@dataclass(frozen=True)
class Field:
    label: str
    value: str
    mono: bool = False


@dataclass(frozen=True)
class TrailStep:
    index: int
    commit: CommitRef
    runs: int
    mean: str
    spread: str  # its own runs: their values below MIN_SPREAD_RUNS, else a 95% t-interval
    decision: str
    p_bad: str
    reason: str
    tail: str
    run_ids: tuple[int, ...]
    range: str = ""  # "good8..bad8" of the search that gave this verdict


@dataclass(frozen=True)
class TrailGroup:
    """The verdicts of one search: the whole range, or one beside a culprit."""

    range: str
    label: str
    steps: tuple[TrailStep, ...]


@dataclass(frozen=True)
class MetricChange:
    metric: str
    before: str
    after: str
    change: str


@dataclass(frozen=True)
class RegressionRow:
    commit: CommitRef
    effect: str
    interval: str
    confidence: str
    attribution: str


@dataclass(frozen=True)
class RangeRow:
    """A range beside a culprit, checked for a further regression."""

    good: CommitRef
    bad: CommitRef
    worse_by: str
    pairs: str
    p_exceeds: str
    searched: str


@dataclass(frozen=True)
class ConfigRow:
    key: str
    good: str
    bad: str
    changed: bool


@dataclass(frozen=True)
class RunView:
    id: int
    role: str
    commit: CommitRef
    seed: int
    overrides: str
    outcome: str
    exit_code: str
    duration: str
    started: str
    primary: str
    metrics: tuple[tuple[str, str], ...]
    config: tuple[tuple[str, str], ...]
    facts: tuple[tuple[str, str], ...]
    error: str
    tail: str
    artifacts: tuple[ArtifactLink, ...]
    reproduce: str
    ok: bool


@dataclass(frozen=True)
class ReportView:
    title: str
    hunt_id: str
    kind: str
    status: str
    tone: str  # found, clean, warn, error: the colour of the verdict box
    verdict: str
    fields: tuple[Field, ...]
    command: str
    culprit: CommitRef | None
    culprit_metrics: tuple[MetricChange, ...]
    step: str
    histories: tuple[MetricHistory, ...]
    history_order: str
    trail: tuple[TrailStep, ...]
    trail_groups: tuple[TrailGroup, ...]
    regressions: tuple[RegressionRow, ...]
    ranges: tuple[RangeRow, ...]
    candidates: tuple[tuple[CommitRef, str], ...]  # commit, probability ("" if none)
    candidates_intro: str
    config_diff: tuple[ConfigRow, ...]
    attribution: AttributionView | None
    runs: tuple[RunView, ...]
    notes: tuple[str, ...] = ()  # the hunt's own, e.g. why no attribution was computed
    set_aside: str = ""  # the runs the search left out as outliers, in words


_TONES = {"found": "found", "no-regression": "clean", "ambiguous": "warn",
          "inconclusive": "warn", "running": "warn", "interrupted": "warn",
          "killed": "warn"}


# --- building ----------------------------------------------------------------------------


def build_view(hunt: Hunt, linked: Sequence[tuple[str, Run]],
               artifacts: Mapping[int, Sequence[ArtifactLink]] | None = None) -> ReportView:
    params = hunt.params or {}
    metrics = [str(m) for m in params.get("metrics") or []]
    result: dict[str, Any] = {"status": hunt.status}
    if metrics:
        result["metric"] = metrics[0]
    if params.get("direction"):
        result["direction"] = params["direction"]
    result.update(hunt.result or {})
    metric = str(result.get("metric") or "metric")
    status = str(result.get("status") or hunt.status)
    direction = str(result.get("direction") or "higher")
    commits = _commit_index(result)
    runs = [run for _, run in linked]
    fb = obj(result.get("first_bad")) or None
    plots, order = histories(result, params, runs, {s: c.date for s, c in commits.items()},
                             metric, metrics)
    trail = _trail(result, runs, commits)
    return ReportView(
        title=f"bisector {hunt.kind} {hunt.id}: {metric} ({status})",
        hunt_id=hunt.id,
        kind=hunt.kind,
        status=status,
        tone=_TONES.get(status, "error"),
        verdict=verdict_sentence(result),
        fields=_fields(hunt, result, params, metric, direction, runs),
        command=find_command(params) if hunt.kind == "find" else "",
        culprit=commits.get(str(fb.get("commit"))) if fb else None,
        culprit_metrics=_culprit_metrics(fb, metric),
        step=_step(fb),
        histories=plots,
        history_order=order,
        trail=trail,
        trail_groups=_trail_groups(trail, result),
        regressions=tuple(_regression(r, commits) for r in result.get("regressions") or []
                          if isinstance(r, dict)),
        ranges=tuple(_range(r, commits) for r in result.get("ranges") or []
                     if isinstance(r, dict)),
        candidates=_candidates(result, commits),
        candidates_intro=_candidates_intro(result),
        notes=tuple(str(n) for n in result.get("notes") or []),
        set_aside=_set_aside(result),
        config_diff=_config_diff(result, params, linked),
        attribution=attribution_view(result.get("attribution"), Direction(direction)
                                     if direction in ("higher", "lower") else Direction.HIGHER),
        runs=tuple(_run_view(role, run, params, metric, commits, artifacts or {})
                   for role, run in linked),
    )


def _commit_index(result: Mapping[str, Any]) -> dict[str, CommitRef]:
    """Everything the result says about commits, keyed by full sha."""
    index: dict[str, CommitRef] = {}
    entries = [t for t in result.get("trail") or [] if isinstance(t, dict)]
    for key in ("good", "bad", "first_bad"):
        if isinstance(result.get(key), dict):
            entries.append(result[key])
    for r in [*(result.get("regressions") or []), *(result.get("candidate_probabilities") or [])]:
        if isinstance(r, dict):
            entries.append(r)
    for e in entries:
        sha = str(e.get("commit") or "")
        if not sha:
            continue
        old = index.get(sha, CommitRef(sha))
        index[sha] = CommitRef(sha, str(e.get("subject") or old.subject),
                               str(e.get("author") or old.author), str(e.get("date") or old.date))
    return index


def _fields(hunt: Hunt, result: Mapping[str, Any], params: Mapping[str, Any], metric: str,
            direction: str, hunt_runs: Sequence[Run]) -> tuple[Field, ...]:
    def end(name: str) -> str:
        e = obj(result.get(name))
        sha = str(e.get("commit") or params.get(f"{name}_sha") or "")
        asked = str(params.get(name) or "")
        label = sha[:8] if sha else asked or DASH
        if asked and sha and not sha.startswith(asked):
            label = f"{label} ({asked})"
        if e.get("mean") is not None:
            label += (f": {metric} = {num(e.get('mean'))} "
                      f"(n = {e.get('n', DASH)}, sd {num(e.get('sd'))})")
        return label

    pins = obj(result.get("pins", params.get("pins")))
    runs = runs_phrase(result.get("probe_runs", DASH), result.get("reused_runs", 0),
                       result.get("failed_runs", 0))
    fields = [
        Field("Metric", _metric_text(metric, params, hunt_runs)),
        Field("Direction", f"{direction} is better"),
        Field("Good", end("good"), mono=True),
        Field("Bad", end("bad"), mono=True),
        Field("Pins", _pins_text(pins, hunt_runs)),
        Field("Min effect", _min_effect_text(result, params)),
        Field("Probe", str(params.get("probe") or DASH), mono=True),
        Field("Probe runs", runs),
        Field("Started", when(hunt.created_at)),
        Field("Finished", when(hunt.finished_at)),
    ]
    if result.get("error"):
        fields.append(Field("Error", str(result["error"])))
    return tuple(fields)


def _metric_text(metric: str, params: Mapping[str, Any], runs: Sequence[Run]) -> str:
    """The primary metric, then the other metrics asked for: recorded only if a run reported it."""
    others = [str(m) for m in params.get("metrics") or [] if str(m) != metric]
    reported = {name for run in runs for name in run.metrics}
    recorded = [m for m in others if m in reported]
    missing = [m for m in others if m not in reported]
    notes = ([f"also recorded: {', '.join(recorded)}"] if recorded else []) + (
        [f"asked for but never reported: {', '.join(missing)}"] if missing else [])
    return metric + (f" ({'; '.join(notes)})" if notes else "")


def _min_effect_text(result: Mapping[str, Any], params: Mapping[str, Any]) -> str:
    """The threshold the search applied; a noisy search without one counts any step."""
    value = result.get("min_effect", params.get("min_effect"))
    if value is None and result.get("status") not in (None, "error"):
        return "none given: any step the search can show counts"
    return num(value)


def _pins_text(pins: Mapping[str, Any], runs: Sequence[Run]) -> str:
    """The pins; one the probe never reported in its config could not be checked."""
    reported = {key for run in runs for key in run.config}
    return ", ".join(f"{k}={value_text(v)}" + ("" if k in reported or not runs else
                                                " (never in the probe's reported config: "
                                                "not checked)")
                     for k, v in sorted(pins.items())) or "none"


def _culprit_metrics(fb: Mapping[str, Any] | None, metric: str) -> tuple[MetricChange, ...]:
    if not fb or not isinstance(fb.get("metrics"), dict):
        return ()
    rows = []
    names = sorted(fb["metrics"], key=lambda n: (n != metric, n))
    for name in names:
        m = fb["metrics"][name]
        if not isinstance(m, dict):
            continue
        before, after = finite(m.get("parent_mean")), finite(m.get("mean"))
        change = signed(after - before) if before is not None and after is not None else DASH
        rows.append(MetricChange(str(name), num(before), num(after), change))
    return tuple(rows)


def _set_aside(result: Mapping[str, Any]) -> str:
    runs = [a for a in result.get("set_aside") or [] if isinstance(a, dict)]
    if not runs:
        return ""
    listed = ", ".join(f"{str(a.get('commit'))[:8]} seed {a.get('seed')} ({num(a.get('value'))})"
                       for a in runs)
    return (f"Set aside as outliers, far from their commit's other runs (a diverged "
            f"training?), so in no mean, interval or decision: {listed}. The plot shows "
            "them hollow; they are among the runs below.")


def _step(fb: Mapping[str, Any] | None) -> str:
    if not fb:
        return ""
    effect = signed(step_effect(fb))  # the paired effect, as the JSON and the terminal say
    n = fb.get("n", DASH)
    return (f"step {effect}, {step_spread(fb.get('ci'))}, {n} paired run{'' if n == 1 else 's'}, "
            f"confidence {confidence_text(fb.get('confidence'))}" + regression_odds(fb))


def _trail(result: Mapping[str, Any], runs: Sequence[Run],
           commits: Mapping[str, CommitRef]) -> tuple[TrailStep, ...]:
    by_id = {r.run_id: r for r in runs}
    steps = []
    for i, t in enumerate(result.get("trail") or [], start=1):
        if not isinstance(t, dict):
            continue
        sha = str(t.get("commit") or "")
        values = [v for v in (finite(x) for x in t.get("values") or []) if v is not None]
        run_ids = tuple(int(r) for r in t.get("run_ids") or [] if isinstance(r, int))
        failed = [by_id[r] for r in run_ids if r in by_id and not by_id[r].ok]
        steps.append(TrailStep(
            index=i, commit=commits.get(sha, CommitRef(sha)), runs=int(finite(t.get("n")) or 0),
            mean=num(t.get("mean")), spread=_spread(t, values),
            decision=str(t.get("verdict") or DASH),
            p_bad=num(t.get("p_bad")) if t.get("p_bad") is not None else "",
            reason=str(t.get("reason") or ""),
            tail=failed[-1].output_tail if failed else "", run_ids=run_ids,
            range=str(t.get("range") or "")))
    return tuple(steps)


def _spread(step: Mapping[str, Any], values: Sequence[float]) -> str:
    """A trail commit's own runs: their values when fewer than MIN_SPREAD_RUNS, else the 95%
    t-interval of their mean. Never the basis of the verdict (seed-paired runs are)."""
    count = len(values) if values else int(finite(step.get("n")) or 0)
    if count >= MIN_SPREAD_RUNS:
        return interval(step.get("ci") or spread_interval(values))
    return ", ".join(num(v) for v in values) if len(values) > 1 else DASH


def _trail_groups(trail: Sequence[TrailStep], result: Mapping[str, Any]
                  ) -> tuple[TrailGroup, ...]:
    """The trail by search, in the order the searches ran; within each, decision order."""
    whole = "..".join(str(obj(result.get(k)).get("commit") or "")[:8] for k in ("good", "bad"))
    ranges = list(dict.fromkeys(s.range for s in trail))
    groups = []
    for r in ranges:
        label = ("" if len(ranges) == 1 else
                 f"the whole range {r}" if r == whole else f"{r}, beside a culprit")
        groups.append(TrailGroup(r, label, tuple(s for s in trail if s.range == r)))
    return tuple(groups)


def _regression(r: Mapping[str, Any], commits: Mapping[str, CommitRef]) -> RegressionRow:
    sha = str(r.get("commit") or "")
    attribution = obj(r.get("attribution"))
    text = str(attribution.get("sentence") or attribution.get("verdict") or "")
    return RegressionRow(commits.get(sha, CommitRef(sha, str(r.get("subject") or ""))),
                         signed(r.get("effect")), interval(r.get("ci"), sign=True),
                         confidence_text(r.get("confidence")), text)


def _range(r: Mapping[str, Any], commits: Mapping[str, CommitRef]) -> RangeRow:
    good, bad = str(r.get("good") or ""), str(r.get("bad") or "")
    worse = finite(r.get("regression"))
    change = f"{num(abs(worse))} {'worse' if worse > 0 else 'better'}" if worse else num(worse)
    return RangeRow(commits.get(good, CommitRef(good)), commits.get(bad, CommitRef(bad)),
                    change, num(r.get("pairs")), num(r.get("p_exceeds")),
                    "yes" if r.get("searched") else "no")


def _candidates(result: Mapping[str, Any], commits: Mapping[str, CommitRef]
                ) -> tuple[tuple[CommitRef, str], ...]:
    """The commits the culprit may be, with the probability the search gives each."""
    p_of = candidate_probabilities(result)
    return tuple((commits.get(str(c), CommitRef(str(c))),
                  f"{p_of[str(c)]:.2f}" if str(c) in p_of else "")
                 for c in result.get("candidates") or [])


def _candidates_intro(result: Mapping[str, Any]) -> str:
    if result.get("status") == "inconclusive":
        why = result.get("search") or "the run budget was spent"
        span = span_text(result)
        return (f"No culprit was verified at the target confidence ({why}). "
                + (f"{span[0].upper()}{span[1:]}. " if span else "")
                + f"The likeliest first bad commits ({held_text(result)}), with the "
                "probability the search gives each:")
    return "Untestable commits leave the first bad commit among these:"


def _config_diff(result: Mapping[str, Any], params: Mapping[str, Any],
                 linked: Sequence[tuple[str, Run]]) -> tuple[ConfigRow, ...]:
    """The config each endpoint reported (first plain run at each), key by key."""
    pins = obj(result.get("pins", params.get("pins")))
    ends: dict[str, Mapping[str, Any]] = {}
    for name in ("good", "bad"):
        sha = obj(result.get(name)).get("commit") or params.get(f"{name}_sha")
        for _, run in linked:
            if run.request.commit == sha and plain_run(run, pins):
                ends[name] = run.config
                break
    if len(ends) < 2:
        return ()
    good, bad = ends["good"], ends["bad"]
    missing = object()
    rows = []
    for key in sorted(set(good) | set(bad)):
        g, b = good.get(key, missing), bad.get(key, missing)
        changed = g is missing or b is missing or canonical_json(g) != canonical_json(b)
        rows.append(ConfigRow(key, DASH if g is missing else value_text(g),
                              DASH if b is missing else value_text(b), changed))
    rows.sort(key=lambda r: not r.changed)
    return tuple(rows)


def _run_view(role: str, run: Run, params: Mapping[str, Any], metric: str,
              commits: Mapping[str, CommitRef],
              artifacts: Mapping[int, Sequence[ArtifactLink]]) -> RunView:
    sha = run.request.commit
    return RunView(
        id=int(run.run_id or 0), role=role, commit=commits.get(sha, CommitRef(sha)),
        seed=run.request.seed,
        overrides=value_text(dict(run.request.overrides)) if run.request.overrides else "{}",
        outcome=run.outcome.value,
        exit_code=DASH if run.exit_code is None else str(run.exit_code),
        duration=f"{run.duration:.2f} s", started=when(run.started_at),
        primary=num(run.value(metric)),
        metrics=tuple((str(k), num(v)) for k, v in sorted(run.metrics.items())),
        config=tuple((str(k), value_text(v)) for k, v in sorted(run.config.items())),
        facts=tuple((str(k), value_text(v)) for k, v in sorted(run.facts.items())),
        error=run.error, tail=run.output_tail,
        artifacts=tuple(artifacts.get(int(run.run_id or 0), ())),
        reproduce=probe_command(params, run), ok=run.ok)
