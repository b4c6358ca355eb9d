"""Attribution words: each key's line, the one sentence, and the --pin advice.

Pure logic: deltas and estimates in, strings out; no processes, files or clock.
It computes no estimate and makes no finding itself (`attribute.py` does); it
only says what they are.
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Iterable, Mapping, Sequence
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


def percent(share: float) -> str:
    """'21%'; a share that rounds to zero is '0%', never '-0%'."""
    text = f"{share:.0%}"
    return "0%" if text == "-0%" else text


def key_line(delta: Delta, effect: KeyEffect | None, *, share: float | None = None,
             not_controllable: str = "", min_effect: float | None = None,
             alone: bool = False) -> str:
    """One line per delta key, effect and interval included, also when there is no effect.

    `alone`: the effect is the key's moved alone while keys acting together (untested
    which) do something, so "no effect" is only said of the key by itself.
    """
    head = f"{delta.key} {show_value(delta.bad)} vs {show_value(delta.good)}"
    if effect is None:
        return (f"{head}: not controllable ({not_controllable}); its effect, if any, "
                "is counted with the code")
    est = effect.effect
    numbers = f"{show_number(est.effect)}, {_ci_text(est)}"
    of_change = f", {percent(share)} of the change" if share is not None else ""
    together = f"together with {' and '.join(effect.partners)}" if effect.partners else ""
    if effect.finding is Finding.MATTERS:
        line = f"{head}: {numbers}"
        if together:  # the number is a main effect; moved alone the key does something else
            line += f" ({_main_and_alone(effect)})"
        return line + of_change + (f"; acts {together}" if together else "")
    if effect.finding is Finding.TOGETHER and not together and effect.averaged_over:
        together = f"together with {' and '.join(effect.averaged_over)}"
    if together:
        return f"{head}: matters only {together} ({_main_and_alone(effect)})"
    if effect.finding is Finding.SMALL:
        return f"{head}: small: {numbers}{of_change}, {_below(min_effect)}"
    if effect.finding is Finding.NONE:
        return f"{head}: no effect{' alone' if alone else ''} ({numbers})"
    if effect.finding is Finding.UNCLEAR:
        return f"{head}: unclear ({numbers}); more seeds would tell"
    return f"{head}: not measured (the probe failed or the run budget ran out)"


def _below(min_effect: float | None) -> str:
    return ("below the min effect" if min_effect is None
            else f"below the min effect {show_number(min_effect)}")


def _main_and_alone(effect: KeyEffect) -> str:
    """'alone -0.2, 95% CI ..; main effect -0.95, 95% CI .., averaged over pad_object'.

    With an interaction the main effect (the number in `effect`) mixes the key's own
    move with its partners' help; the move alone, from the all-good config, says what
    the key does by itself.
    """
    est = effect.effect
    main = f"main effect {show_number(est.effect)}, {_ci_text(est)}"
    if effect.averaged_over:
        main += f", averaged over the values of {names(effect.averaged_over)}"
    alone = effect.alone
    if alone is None or not alone.measured:
        return f"{main}; alone: not measured"
    return f"alone {show_number(alone.effect)}, {_ci_text(alone)}; {main}"


def names(keys: Iterable[str]) -> str:
    keys = list(keys)
    return keys[0] if len(keys) == 1 else ", ".join(keys[:-1]) + " and " + keys[-1]


def _alone_text(keys: Sequence[str], effects: Mapping[str, KeyEffect]) -> str:
    """'each alone 0 (95% CI 0..0)', or each key's own number when they differ."""
    texts = []
    for k in keys:
        alone = effects[k].alone if k in effects else None
        texts.append("not measured" if alone is None or not alone.measured
                     else f"{show_number(alone.effect)} ({_ci_text(alone)})")
    if len(set(texts)) == 1:
        return f"each alone {texts[0]}" if len(keys) > 1 else f"alone {texts[0]}"
    return ", ".join(f"{k} alone {t}" for k, t in zip(keys, texts, strict=True))


def _together_parts(interactions: Sequence[Interaction], effects: Mapping[str, KeyEffect]
                    ) -> list[str]:
    """Interactions in words: 'a and b matter only together (..): each alone 0 (..)'."""
    parts, told = [], set()
    for i in interactions:
        keys = list(i.keys)
        size = f"interaction {show_number(i.effect.effect)}"
        if all(k in effects and effects[k].finding is Finding.TOGETHER for k in keys):
            parts.append(f"{names(keys)} matter only together ({size}): "
                         f"{_alone_text(keys, effects)}")
            told |= set(keys)
        else:
            parts.append(f"{names(keys)} act together ({size})")
    for k, e in sorted(effects.items()):
        if e.finding is Finding.TOGETHER and k not in told and not e.partners:
            others = names(e.averaged_over) if e.averaged_over else "the other keys"
            parts.append(f"{k} matters only together with {others}: "
                         f"{_alone_text([k], effects)}")
    return parts


def _code_part(code: Estimate, code_share: float | None, deltas: Mapping[str, Delta],
               not_controllable: Sequence[str], measured_any: bool,
               refused_at_good: Sequence[str] = ()) -> str:
    """What the code contrast explains, and which keys it cannot be told apart from.

    The code contrast runs the good code against the bad code at the good config. A key
    that cannot be set back to its good value stays at its bad value in every cell, so
    its effect, if any, is inside the code contrast.
    """
    part = f"{percent(code_share)} of it" if code_share is not None else "it"
    numbers = f"({show_number(code.effect)}, {_ci_text(code)})"
    if not not_controllable:
        return f"the code change explains {part} {numbers}"
    who = names(list(not_controllable))
    if measured_any:
        return (f"the code change together with {who} (not controllable) explains {part} "
                f"{numbers}")
    refused = [k for k in not_controllable if k in refused_at_good]
    absent = [k for k in not_controllable if k in deltas and deltas[k].good is ABSENT
              and k not in refused]
    ignored = [k for k in not_controllable if k not in absent and k not in refused]
    text = (f"the code change and {who} are not separable here: together they explain "
            f"{part} {numbers}")
    if refused:
        is_, it = ("is", "it") if len(refused) == 1 else ("are", "them")
        text += (f"; {names(refused)} {is_} new at the culprit and the good code does not "
                 f"take {it}: the culprit's code is what brings {it} in (if the good code "
                 f"does read {it}, have the probe apply and report {it} there)")
    if absent:
        text += (f"; the good commit does not report {names(absent)}: have the probe report "
                 f"their effective values at the good commit so bisector can set them back")
    if ignored:
        text += (f"; the probe does not apply the overrides of {names(ignored)}: have it "
                 "apply them so bisector can set them back")
    return text


def attribution_sentence(verdict_: str, *, deltas: Sequence[Delta],
                         effects: Mapping[str, KeyEffect], shares: Mapping[str, float | None],
                         interactions: Sequence[Interaction], code: Estimate,
                         code_share: float | None, not_controllable: Sequence[str],
                         min_effect: float, config: Estimate | None = None,
                         refused_at_good: Sequence[str] = (), alone: bool = False) -> str:
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
        parts.append(f"{names(each)} move it, but the config delta as a whole does not")
    if verdict_ in ("config", "mixed") and movers:
        # a key whose share is negative pushed the metric the other way: it offsets
        offsets = [k for k in movers if (shares.get(k) or 0.0) < 0]
        pushes = [k for k in movers if k not in offsets]
        if len(pushes) == 1:
            share = shares.get(pushes[0])
            tail = f" explains {percent(share)} of it" if share is not None else " explains it"
            parts.append(moved(pushes[0]) + tail)
        elif pushes:
            each = [moved(k) + (f" ({percent(s)})" if (s := shares.get(k)) is not None else "")
                    for k in pushes]
            parts.append(names(each) + " explain it")
        if len(offsets) == 1:
            parts.append(f"{moved(offsets[0])} offsets {percent(-(shares[offsets[0]] or 0))} "
                         "of it")
        elif offsets:
            each = [f"{moved(k)} ({percent(-(shares[k] or 0))})" for k in offsets]
            parts.append(names(each) + " offset it")
        parts += _together_parts(interactions, effects)
    if verdict_ in ("code", "mixed"):
        parts.append(_code_part(code, code_share, by_key, not_controllable,
                                measured_any=bool(effects), refused_at_good=refused_at_good))
    if verdict_ == "none":
        parts.append(f"neither the code nor the config delta moved it by {show_number(min_effect)}"
                     " or more")
    for k, e in effects.items():
        if not e.significant and e.finding is Finding.SMALL and k in by_key:
            share = shares.get(k)
            of_it = f", {percent(share)} of it" if share is not None else ""
            parts.append(f"{moved(k)} is small: {show_number(e.effect.effect)} "
                         f"({_ci_text(e.effect)}{of_it}), {_below(min_effect)}")
    for finding in (Finding.NONE, Finding.UNCLEAR, Finding.UNMEASURED):
        these = [k for k, e in effects.items() if not e.significant and e.finding is finding]
        if these:
            said = f"{finding.value} alone" if alone and finding is Finding.NONE else \
                finding.value
            parts.append(f"{names(these)}: {said}")
    if not_controllable and verdict_ not in ("code", "mixed"):
        parts.append(f"{names(list(not_controllable))}: not controllable, counted with the code")
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
