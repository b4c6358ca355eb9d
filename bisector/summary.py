"""Words for a result: the verdict sentence and the terminal summary.

Pure functions of the SPEC result dict, shared by the terminal, the Markdown
summary and the report, so that all three say the same thing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .attribution_words import names


def left_out(seeds: set[int]) -> str:
    """Words for the seeds a commit failed on: "seeds 2 and 3 failed, left out"."""
    return f"seed{'s' if len(seeds) > 1 else ''} {names(map(str, sorted(seeds)))} failed, left out"


def _num(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, (int, float)) and not isinstance(x, bool) else "n/a"


def confidence_text(x: Any) -> str:
    """Three decimals, rounded down: 0.9999 reads 0.999, never an overclaiming 1.000."""
    if not isinstance(x, (int, float)) or x != x:
        return "n/a"
    return f"{math.floor(min(max(x, 0.0), 1.0) * 1000) / 1000:.3f}"


def regression_odds(step: Mapping[str, Any]) -> str:
    """' given a regression (P(regression) 0.997)' for the noisy engine's culprits, else ''.

    The noisy engine's confidence is P(this commit is the culprit | a regression); whether a
    regression above min_effect exists at all is its own probability.
    """
    p = step.get("p_regression")
    if not isinstance(p, (int, float)) or isinstance(p, bool):
        return ""
    return f" given a regression (P(regression) {confidence_text(p)})"


def _no_regression_why(result: Mapping[str, Any]) -> str:
    """'the change is within 0.05.', or, when bad is clearly the better end, that it
    improved (swapped endpoints or --direction are the usual cause)."""
    g, b = (result.get(k) or {} for k in ("good", "bad"))
    bar = result.get("min_effect")
    within = "no step shown." if bar is None else f"the change is within {_num(bar)}."
    raw = [g.get("mean"), b.get("mean"), g.get("sd") or 0.0, b.get("sd") or 0.0,
           g.get("n") or 1, b.get("n") or 1]
    numbers = [float(x) for x in raw if isinstance(x, (int, float))]
    if len(numbers) < len(raw):
        return within
    g_mean, b_mean, g_sd, b_sd, g_n, b_n = numbers
    higher = result.get("direction") == "higher"
    better = b_mean - g_mean if higher else g_mean - b_mean
    # clearly: past min_effect, or without one three standard errors of the difference
    clear = bar if bar is not None else 3 * math.sqrt(g_sd**2 / g_n + b_sd**2 / b_n)
    if better > 0 and better > clear:
        return (f"it improved by {_num(better)} ({'higher' if higher else 'lower'} is "
                "better). If a regression was expected, check --direction and that --good "
                "is the older commit.")
    return within


def verdict_sentence(result: dict[str, Any]) -> str:
    """One sentence a lead can paste into a bug."""
    metric = result.get("metric", "metric")
    status = result.get("status")
    good, bad = result.get("good") or {}, result.get("bad") or {}
    moved = "fell" if result.get("direction") == "higher" else "rose"
    if status == "found" and result.get("first_bad"):
        fb = result["first_bad"]
        text = (f"{metric} {moved} from {_num(fb.get('parent_mean'))} to {_num(fb.get('mean'))} "
                f"at {str(fb.get('commit', ''))[:8]} '{fb.get('subject', '')}' "
                f"(confidence {confidence_text(fb.get('confidence'))})")
        attribution = (result.get("attribution") or {}).get("sentence")
        return f"{text}; {attribution}" if attribution else text + "."
    if status == "attributed":
        attribution = (result.get("attribution") or {}).get("sentence", "")
        return (f"{metric} went from {_num(good.get('mean'))} at {good.get('commit', '')[:8]} "
                f"to {_num(bad.get('mean'))} at {bad.get('commit', '')[:8]}; {attribution}")
    if status == "no-regression":
        return (f"No regression of {metric} between {good.get('commit', '')[:8]} "
                f"({_num(good.get('mean'))}) and {bad.get('commit', '')[:8]} "
                f"({_num(bad.get('mean'))}): " + _no_regression_why(result))
    if status == "ambiguous":
        shas = ", ".join(c[:8] for c in result.get("candidates", []))
        return (f"{metric} {moved} from {_num(good.get('mean'))} to {_num(bad.get('mean'))}; "
                f"untestable commits leave the culprit among: {shas}.")
    if status == "inconclusive":
        why = result.get("search") or "the run budget was spent"
        return f"{metric}: no culprit verified at the target confidence ({why})."
    if status == "interrupted":
        return f"{metric}: the hunt was interrupted; its finished runs are stored."
    if status == "running":
        return f"{metric}: the hunt is still running (or was killed before it finished)."
    if status == "killed":
        return (f"{metric}: the hunt's process ended before it finished; its finished runs "
                "are stored: run the same command to resume.")
    return f"{metric}: the hunt stopped with an error: {result.get('error', '')}"


def _real(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def step_effect(step: Mapping[str, Any]) -> float | None:
    """A culprit's step: the paired `effect` (the JSON's own), else the change of the means.

    Older stored hunts carry no `effect`; their means are the only estimate they have.
    """
    effect = _real(step.get("effect"))
    if effect is not None and effect == effect:
        return effect
    before, after = _real(step.get("parent_mean")), _real(step.get("mean"))
    return after - before if before is not None and after is not None else None


def step_text(step: Mapping[str, Any]) -> str:
    """'step -3.231 (95% CI -6.294..-0.1671, 4 paired runs)'."""
    lo, hi = (list(step.get("ci") or []) + [None, None])[:2]
    n = step.get("n", 0)
    runs = f"{n} paired run{'' if n == 1 else 's'}"
    if lo is not None and lo == hi:  # a seed-insensitive probe: the step is exact
        return f"step {_num(step_effect(step))} (exact, {runs})"
    if lo is not None and hi is not None and lo <= 0.0 <= hi:
        # the engine's confidence pools every run of the hunt; a few pairs alone may not
        runs += ": alone they do not rule out no step; the confidence uses every run"
    return f"step {_num(step_effect(step))} (95% CI {_num(lo)}..{_num(hi)}, {runs})"


def terminal_summary(result: dict[str, Any]) -> str:
    lines = [verdict_sentence(result)]
    fb = result.get("first_bad")
    if fb:
        lines.append(f"  {step_text(fb)}")
        for name, m in sorted((fb.get("metrics") or {}).items()):
            if name != result.get("metric"):
                lines.append(f"  {name}: {_num(m['parent_mean'])} -> {_num(m['mean'])}")
    attribution = result.get("attribution") or {}
    for line in attribution.get("lines") or []:
        lines.append(f"  {line}")
    for note in [*(attribution.get("notes") or []), *(result.get("notes") or [])]:
        lines.append(f"  note: {note}")  # e.g. a cell the good code spoiled
    further = further_regressions(result)
    # The pin advice is for finding a code regression the config change may hide; one
    # found already is listed below instead.
    if attribution.get("pin_advice") and not further:
        lines.append(f"  {attribution['pin_advice']}")
    lines += [f"  {line}" for line in further]
    p_of, subject = candidate_probabilities(result), candidate_subjects(result)
    if result.get("status") == "inconclusive" and result.get("candidates"):
        if span_text(result):
            lines.append(f"  {span_text(result)}")
        lines.append(f"  the likeliest first bad commits, {held_text(result)}:")
    for c in result.get("candidates", []):
        lines.append(f"  candidate {c[:8]}" + (f" '{subject[c]}'" if subject.get(c) else "")
                     + (f" (P {p_of[c]:.2f})" if c in p_of else ""))
    runs = runs_phrase(result.get("probe_runs", 0), result.get("reused_runs", 0),
                       result.get("failed_runs", 0))
    lines.append(f"  {runs}")
    if result.get("report"):
        lines.append(f"  report: {result['report']}")
    return "\n".join(lines)


def candidate_probabilities(result: Mapping[str, Any]) -> dict[str, float]:
    """Each candidate's posterior probability, by sha."""
    out = {}
    for c in result.get("candidate_probabilities") or []:
        if isinstance(c, dict):
            out[str(c.get("commit"))] = float(c.get("p") or 0.0)
        else:  # results stored before subjects were added kept [sha, p] pairs
            out[str(c[0])] = float(c[1])
    return out


def candidate_subjects(result: Mapping[str, Any]) -> dict[str, str]:
    """Each candidate's subject line, by sha (empty for results stored without them)."""
    return {str(c.get("commit")): str(c.get("subject") or "")
            for c in result.get("candidate_probabilities") or [] if isinstance(c, dict)}


def span_text(result: Mapping[str, Any]) -> str:
    """'95% of the probability lies in 41 commits from 71c74760 'a' to 1ffbd533 'b'', or ''."""
    span = result.get("candidate_span")
    if not isinstance(span, dict) or not span.get("first"):
        return ""
    n = int(span.get("commits") or 0)
    first = f"{str(span['first'])[:8]} '{span.get('first_subject', '')}'"
    if n == 1:
        return f"{float(span.get('p') or 0):.0%} of the probability lies on {first}"
    last = f"{str(span.get('last'))[:8]} '{span.get('last_subject', '')}'"
    return (f"{float(span.get('p') or 0):.0%} of the probability lies in {n} commits from "
            f"{first} to {last}")


def held_text(result: Mapping[str, Any]) -> str:
    """'holding 61% of the probability': how much of the culprit's posterior the candidates
    listed cover (at most 20 are listed, so a flat posterior is partly left out)."""
    p_of = candidate_probabilities(result)
    held = sum(p_of.get(str(c), 0.0) for c in result.get("candidates") or [])
    return f"holding {held:.0%} of the probability"


def further_regressions(result: Mapping[str, Any]) -> list[str]:
    """One line for each regression found after the first (`regressions[1:]`)."""
    if result.get("status") != "found":
        return []
    lines = []
    for r in (result.get("regressions") or [])[1:]:
        if not isinstance(r, Mapping):
            continue
        line = (f"also regressed at {str(r.get('commit', ''))[:8]} '{r.get('subject', '')}': "
                f"{step_text(r)}")
        sentence = (r.get("attribution") or {}).get("sentence")
        lines.append(f"{line}; {sentence}" if sentence else line)
    return lines


def runs_phrase(probe_runs: object, reused: object, failed: object = 0) -> str:
    """'N probe runs (F failed); M more results read back from the store'.

    `reused` counts stored runs made by earlier invocations that this one read back
    instead of running the probe; a run this invocation made and read again is one of
    its N runs, not one more. `failed`: of the N, runs that measured nothing.
    """
    runs = "probe run" if probe_runs == 1 else "probe runs"
    results = "result" if reused == 1 else "results"
    lost = f" ({failed} failed, left out)" if isinstance(failed, int) and failed > 0 else ""
    return f"{probe_runs} {runs}{lost}; {reused} more {results} read back from the store"
