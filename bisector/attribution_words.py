"""Attribution words: each key's line, the one sentence, and the --pin advice.

Pure logic: deltas and estimates in, strings out; no processes, files or clock.
It computes no estimate and makes no finding itself (`attribute.py` does); it
only says what they are.
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from .attribute import ABSENT, Delta, Estimate, Finding, Interaction, KeyEffect


def show_value(value: Any) -> str:
    if value is ABSENT:
        return "(absent)"
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def show_number(x: float) -> str:
    if not math.isfinite(x):
        return "n/a"
    if abs(x) < 5e-13:
        return "0"  # float round-off of an exactly zero contrast
    return f"{x:.3g}"


def _ci_text(est: Estimate) -> str:
    return f"95% CI {show_number(est.ci[0])}..{show_number(est.ci[1])}"


def key_line(delta: Delta, effect: KeyEffect | None, *, share: float | None = None,
             not_controllable: str = "") -> str:
    """One line per delta key, effect and interval included, also when there is no effect."""
    head = f"{delta.key} {show_value(delta.bad)} vs {show_value(delta.good)}"
    if effect is None:
        return (f"{head}: not controllable ({not_controllable}); its effect, if any, "
                "is counted with the code")
    est = effect.effect
    numbers = f"{show_number(est.effect)}, {_ci_text(est)}"
    together = f"together with {' and '.join(effect.partners)}" if effect.partners else ""
    if effect.finding is Finding.MATTERS:
        line = f"{head}: {numbers}"
        if together:  # the number is a main effect; moved alone the key does something else
            line += f" ({_main_and_alone(effect)})"
        if share is not None:
            line += f", {share:.0%} of the change"
        return line + (f"; acts {together}" if together else "")
    if together:
        return f"{head}: matters only {together} ({_main_and_alone(effect)})"
    if effect.finding is Finding.NONE:
        return f"{head}: no effect ({numbers})"
    if effect.finding is Finding.UNCLEAR:
        return f"{head}: unclear ({numbers}); more seeds would tell"
    return f"{head}: not measured (the probe failed or the run budget ran out)"


def _main_and_alone(effect: KeyEffect) -> str:
    """'alone -0.2, 95% CI ..; main effect -0.95, 95% CI .., averaged over pad_object'.

    With an interaction the main effect (the number in `effect`) mixes the key's own
    move with its partners' help; the move alone, from the all-good config, says what
    the key does by itself.
    """
    est = effect.effect
    main = f"main effect {show_number(est.effect)}, {_ci_text(est)}"
    if effect.averaged_over:
        main += f", averaged over the values of {_names(effect.averaged_over)}"
    alone = effect.alone
    if alone is None or not alone.measured:
        return f"{main}; alone: not measured"
    return f"alone {show_number(alone.effect)}, {_ci_text(alone)}; {main}"


def _names(keys: Sequence[str]) -> str:
    keys = list(keys)
    return keys[0] if len(keys) == 1 else ", ".join(keys[:-1]) + " and " + keys[-1]


def attribution_sentence(verdict_: str, *, deltas: Sequence[Delta],
                         effects: Mapping[str, KeyEffect], shares: Mapping[str, float | None],
                         interactions: Sequence[Interaction], code: Estimate,
                         code_share: float | None, not_controllable: Sequence[str],
                         min_effect: float, config: Estimate | None = None) -> str:
    """One sentence for the verdict: what explains the change, and what does nothing."""
    by_key = {d.key: d for d in deltas}
    movers = sorted((k for k, e in effects.items() if e.significant),
                    key=lambda k: -abs((effects[k].shapley or effects[k].effect).effect))

    def moved(key: str) -> str:
        d = by_key[key]
        return f"{key} {show_value(d.good)} to {show_value(d.bad)}"

    parts = []
    if verdict_ in ("config", "mixed") and not movers and config is not None:
        parts.append(f"the config delta as a whole explains {show_number(config.effect)} "
                     f"({_ci_text(config)}), no single key does")
    if verdict_ not in ("config", "mixed") and movers:
        each = [f"{moved(k)} ({show_number(effects[k].effect.effect)})" for k in movers]
        parts.append(f"{_names(each)} move it, but the config delta as a whole does not")
    if verdict_ in ("config", "mixed") and movers:
        if len(movers) == 1:
            share = shares.get(movers[0])
            tail = f" explains {share:.0%} of it" if share is not None else " explains it"
            parts.append(moved(movers[0]) + tail)
        else:
            each = [moved(k) + (f" ({s:.0%})" if (s := shares.get(k)) is not None else "")
                    for k in movers]
            parts.append(_names(each) + " explain it")
        for i in interactions:
            parts.append(f"{_names(list(i.keys))} act together "
                         f"(interaction {show_number(i.effect.effect)})")
    if verdict_ in ("code", "mixed"):
        part = f"{code_share:.0%} of it" if code_share is not None else "it"
        parts.append(f"the code change explains {part} ({show_number(code.effect)}, "
                     f"{_ci_text(code)})")
    if verdict_ == "none":
        parts.append(f"neither the code nor the config delta moved it by {show_number(min_effect)}"
                     " or more")
    for finding in (Finding.NONE, Finding.UNCLEAR, Finding.UNMEASURED):
        these = [k for k, e in effects.items() if not e.significant and e.finding is finding]
        if these:
            parts.append(f"{_names(these)}: {finding.value}")
    if not_controllable:
        parts.append(f"{_names(list(not_controllable))}: not controllable, counted with the code")
    return "; ".join(parts)


def pin_flags(pins: Mapping[str, Any]) -> list[str]:
    """`--pin` arguments that hold these keys, e.g. ["object_big=false"]."""
    return [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in pins.items()]


def pin_advice(pins: Mapping[str, Any]) -> str:
    """How to rerun the hunt with the keys that matter held, to see what the code did."""
    if not pins:
        return ""
    flags = " ".join(f"--pin {shlex.quote(flag)}" for flag in pin_flags(pins))
    return (f"to look for a code regression behind this config change, rerun find with "
            f"{flags}")


def confounder_note(deltas: Sequence[Delta], held: Mapping[str, Any]) -> str:
    """What `find` says before it starts when the endpoints' configs differ."""
    if not deltas:
        return ""
    shown = ", ".join(f"{d.key} ({show_value(d.good)} -> {show_value(d.bad)})" for d in deltas)
    note = f"the endpoints' configs differ in {len(deltas)} key(s): {shown}"
    if held:
        note += f"; held by --pin: {', '.join(held)}"
    return note
