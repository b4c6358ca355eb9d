"""The attribution's answer: the SPEC section 5 object, built from the measured cells.

It splits the change into code, config and keys with the arithmetic in
`attribute`, asks `attribution_words` for the lines and the sentence, and lays
out the JSON: numbers (NaN as null), intervals, shares, run ids and the table of
cells. It measures nothing and prints nothing; `attribution` adds the run counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from . import attribute as A
from . import attribution_words as W
from . import decide
from .attribute import ABSENT, Cell, Delta, Estimate, Finding, Interaction, KeyEffect
from .attribution_cells import Cells
from .attribution_designs import Design, analyze, key_contrast
from .attribution_plan import MAX_FACTORIAL_KEYS


def build_result(d: Design, cells: Cells, deltas: Sequence[Delta],
                 not_controllable: dict[str, str], min_effect: float, pins: Mapping[str, Any],
                 refused_at_good: Sequence[str] = ()) -> dict[str, Any]:
    """The attribution object for what `d` measured, less the run counts `attribute` adds.

    `refused_at_good`: keys new at the culprit that the good code would not run with.
    """
    values = cells.values
    keys = d.keys
    effects, inters = analyze(d, values, min_effect)
    by_key = {e.key: e for e in effects}
    code = A.estimate(A.code_contrast(), values)
    config = A.estimate(A.config_contrast(keys), values)
    total = A.estimate(A.total_contrast(keys), values)
    verdict = A.verdict(A.judge(code, min_effect), A.judge(config, min_effect))
    share_of = _shares_of(total, min_effect)
    shares = {e.key: share_of(e.shapley or e.effect) for e in effects}
    code_share = share_of(code)
    rows, lines = [], []
    for delta in deltas:
        e = by_key.get(delta.key)
        line = W.key_line(delta, e, share=shares.get(delta.key),
                          not_controllable=not_controllable.get(delta.key, "not measured"),
                          min_effect=min_effect)
        lines.append(line)
        rows.append(_delta_json(delta, e, shares.get(delta.key), line,
                                _run_ids(cells, key_contrast(d, delta.key))
                                if e is not None else []))
    uncontrolled = [k for k in not_controllable if k in {dd.key for dd in deltas}]
    sentence = W.attribution_sentence(
        verdict, deltas=deltas, effects=by_key, shares=shares, interactions=inters, code=code,
        code_share=code_share, not_controllable=uncontrolled, min_effect=min_effect,
        config=config, refused_at_good=[k for k in uncontrolled if k in refused_at_good])
    # no key could be set back: the config part was never measured (0.0 would claim it was
    # measured and found nothing); the code contrast then holds those keys' effects too
    unseparated = bool(uncontrolled) and not keys
    out: dict[str, Any] = {
        "verdict": verdict,
        "code_effect": _num(code.effect), "code_ci": _ci(code),
        "config_effect": None if unseparated else _num(config.effect),
        "config_ci": _ci(config),
        "total_effect": _num(total.effect), "total_ci": _ci(total),
        "code_share": code_share,
        "deltas": rows,
        "interactions": [_interaction_json(i, cells, A.interaction(keys, *i.keys))
                         for i in inters],
        "sentence": sentence,
        "lines": lines,
        "design": d.plan.design,
        "ddmin": None if d.ddmin is None else {
            "subset": sorted(d.ddmin.subset), "tests": d.ddmin.calls, "minimal": d.ddmin.minimal},
        "held": dict(pins),
        "not_controllable": uncontrolled,
        "not_controllable_why": {k: not_controllable[k] for k in uncontrolled},
        "factorial": _table(cells),
        "notes": list(d.notes),
    }
    if uncontrolled and verdict in ("code", "mixed"):
        out["notes"].append(
            f"the code effect includes whatever {W.names(uncontrolled)} "
            + ("does: it" if len(uncontrolled) == 1 else "do: they") + " could not be set back"
            + (", so the config part is not measured" if unseparated else ""))
    out.update(_pin_fields(effects, cells.deltas, shares, pins, verdict))
    corner = Cell("good", frozenset(keys))
    if d.plan.corner and corner in values:
        at_bad = A.estimate(A.code_at_bad_contrast(keys), values)
        out["code_effect_at_bad_config"] = _num(at_bad.effect)
        out["code_at_bad_config_ci"] = _ci(at_bad)
        both = {c: w for c, w in A.code_at_bad_contrast(keys).items()}
        for c, w in A.code_contrast().items():
            both[c] = both.get(c, 0.0) - w
        differ = A.estimate(both, values)
        if A.judge(differ, min_effect) is Finding.MATTERS:
            out["notes"].append(
                f"the code change acts differently under the two configs: "
                f"{W.show_number(code.effect)} at the good config, "
                f"{W.show_number(at_bad.effect)} at the bad one")
    return out


def _shares_of(total: Estimate, min_effect: float) -> Callable[[Estimate], float | None]:
    """A part's share of the total change; None when the total is not shown to matter."""
    whole = total.effect if A.judge(total, min_effect) is Finding.MATTERS else None

    def share_of(part: Estimate) -> float | None:
        if not whole or not part.measured:
            return None
        return round(part.effect / whole, 12) + 0.0  # no -0.0 for an exact zero
    return share_of


def _delta_json(delta: Delta, e: KeyEffect | None, share: float | None, line: str,
                run_ids: list[int]) -> dict[str, Any]:
    absent = "good" if delta.good is ABSENT else "bad" if delta.bad is ABSENT else None
    return {
        "key": delta.key,
        "good": None if delta.good is ABSENT else delta.good,
        "bad": None if delta.bad is ABSENT else delta.bad,
        "absent": absent,
        "effect": None if e is None else _num(e.effect.effect),
        "ci": None if e is None else _ci(e.effect),
        "share": share,
        "shapley": None if e is None or e.shapley is None else _num(e.shapley.effect),
        # the key moved alone from the all-good config (factorial designs); beside a main
        # `effect` it shows what the key does without its interaction partners
        "alone_effect": None if e is None or e.alone is None else _num(e.alone.effect),
        "alone_ci": None if e is None or e.alone is None else _ci(e.alone),
        # null, not false, for a key that was never measured: false reads "tested, nothing"
        "significant": None if e is None or e.finding is Finding.UNMEASURED else e.significant,
        "finding": "not controllable" if e is None else e.finding.value,
        "interacts_with": [] if e is None else list(e.partners),
        "controllable": e is not None,
        "line": line,
        "run_ids": run_ids,
    }


def _num(x: float) -> float | None:
    return x if x == x else None  # NaN is not JSON


def _ci(est: Estimate) -> list[float] | None:
    return [est.ci[0], est.ci[1]] if est.measured else None


def _run_ids(cells: Cells, contrast: Mapping[Cell, float]) -> list[int]:
    ids = {r.run_id for c, w in contrast.items() if w for r in cells.runs.get(c, [])
           if r.run_id is not None}
    return sorted(ids)


def _table(cells: Cells) -> list[dict[str, Any]]:
    order = sorted(cells.runs, key=lambda c: (c.code != "good", len(c.bad_keys),
                                              sorted(c.bad_keys)))
    rows = []
    for cell in order:
        samples = cells.values.get(cell, {})
        rows.append({
            "code": cell.code,
            "commit": cells.bad if cell.code == "bad" else cells.good,
            "config": cells.config(cell),
            "overrides": cells.overrides(cell),
            "mean": decide.mean(samples) if samples else None,
            "n": len(samples),
            "run_ids": [r.run_id for r in cells.runs[cell] if r.run_id is not None],
        })
    return rows


def build_added_result(cells: Cells, deltas: Sequence[Delta], min_effect: float,
                       pins: Mapping[str, Any], *, full: bool) -> dict[str, Any]:
    """The attribution object when some changed key is new at the culprit (absent at good).

    No override can remove a key from the bad code, so the keys are set to their bad
    values at the good code instead: in every combination (`full`: main effects, Shapley
    shares and interactions, as the factorial at the bad code gives them) or each alone
    and then all; the config's part is all of them at the good code, the code's part the
    bad commit against the good code with every key set.
    """
    values, keys = cells.values, cells.keys
    good0, every, bad = Cell("good", frozenset()), Cell("good", frozenset(keys)), \
        Cell("bad", frozenset(keys))

    def diff(plus: Cell, minus: Cell) -> Estimate:
        return A.estimate({plus: 1.0, minus: -1.0}, values)

    config, code, total = diff(every, good0), diff(bad, every), diff(bad, good0)
    # the good code's cells read as a design over the keys (keys in a cell at bad values)
    at_good = {Cell("bad", c.bad_keys): v for c, v in values.items() if c.code == "good"}
    inters: list[Interaction] = []
    if full:
        found, inters = A.factorial_effects(keys, at_good, min_effect)
        effects = {e.key: e for e in found}
    else:
        effects = {}
        for k in keys:
            est = diff(Cell("good", frozenset({k})), good0)
            effects[k] = KeyEffect(k, est, est if len(keys) == 1 else None,
                                   A.judge(est, min_effect))
    verdict = A.verdict(A.judge(code, min_effect), A.judge(config, min_effect))
    share_of = _shares_of(total, min_effect)
    shares = {k: share_of(e.shapley or e.effect) for k, e in effects.items()}
    why = (f"more than {MAX_FACTORIAL_KEYS} keys" if len(keys) > MAX_FACTORIAL_KEYS
           else "the run budget did not allow every combination")
    joint_part = ""
    if not full and len(keys) > 1:
        # all keys together against the single keys: what only combinations of keys do
        joint = A.estimate({every: 1.0, good0: len(keys) - 1.0,
                            **{Cell("good", frozenset({k})): -1.0 for k in keys}}, values)
        if A.judge(joint, min_effect) is Finding.MATTERS:
            part = share_of(joint)
            joint_part = (f"; {W.percent(part) if part is not None else 'part'} of it "
                          f"({W.show_number(joint.effect)}) comes from keys acting together, "
                          f"which ones was not tested ({why})")
    rows, lines = [], []
    for delta in deltas:
        e = effects.get(delta.key)
        line = W.key_line(delta, e, share=shares.get(delta.key), min_effect=min_effect,
                          alone=bool(joint_part))
        lines.append(line)
        ids = [] if e is None else _run_ids(
            cells, {c: 1.0 for c in values if c.code == "good"
                    and (delta.key in c.bad_keys or not c.bad_keys)})
        rows.append(_delta_json(delta, e, shares.get(delta.key), line, ids))
    sentence = W.attribution_sentence(
        verdict, deltas=deltas, effects=effects, shares=shares, interactions=inters,
        code=code, code_share=share_of(code), not_controllable=[], min_effect=min_effect,
        config=config, alone=bool(joint_part)) + joint_part
    new = [d.key for d in deltas if d.good is ABSENT]
    each = "in every combination" if full and len(keys) > 1 else (
        f"alone, then all (interactions not tested: {why})" if len(keys) > 1 else "")
    if len(new) == len(keys):
        design = "keys added at good"
        note = (f"{', '.join(new)} {'is' if len(new) == 1 else 'are'} new at the culprit "
                f"(absent at the good commit): added to the good code {each}").rstrip()
    else:
        design = "keys set at good"
        note = (f"{', '.join(new)} {'is' if len(new) == 1 else 'are'} new at the culprit "
                "(absent at the good commit) and no override can remove a key from the bad "
                f"code: every changed key was set to its bad value at the good code {each}")
    return {
        "verdict": verdict,
        "code_effect": _num(code.effect), "code_ci": _ci(code),
        "config_effect": _num(config.effect), "config_ci": _ci(config),
        "total_effect": _num(total.effect), "total_ci": _ci(total),
        "code_share": share_of(code),
        "deltas": rows,
        # the interaction's contrast is over design cells; its runs are the good code's
        "interactions": [_interaction_json(i, cells, {
                             Cell("good", c.bad_keys): w
                             for c, w in A.interaction(keys, *i.keys).items()})
                         for i in inters],
        "sentence": sentence, "lines": lines,
        "design": design, "ddmin": None, "held": dict(pins),
        "not_controllable": [], "not_controllable_why": {},
        "factorial": _table(cells),
        "notes": [f"{note}; the code's part is measured at the bad config (the bad "
                  "commit against the good code with every key set)"],
        **_pin_fields(effects.values(), cells.deltas, shares, pins, verdict),
        "code_effect_at_bad_config": _num(code.effect), "code_at_bad_config_ci": _ci(code),
    }


def _interaction_json(i: Interaction, cells: Cells, contrast: Mapping[Cell, float]
                      ) -> dict[str, Any]:
    return {"keys": list(i.keys), "effect": i.effect.effect, "ci": _ci(i.effect),
            "significant": True, "run_ids": _run_ids(cells, contrast)}


def _pin_fields(effects: Iterable[KeyEffect], deltas: Mapping[str, Delta],
                shares: Mapping[str, float | None], pins: Mapping[str, Any], verdict: str
                ) -> dict[str, Any]:
    """recommend_pins, pin_flags and pin_advice, for either design.

    Keys that matter, and a real but small key that carries a tenth of the change or
    more, are held at their good values; a key absent at good cannot be, and the advice
    says so. The rerun keeps the pins in force: without them it would hunt a different
    history.
    """
    effects = list(effects)
    recommend = {e.key: deltas[e.key].good for e in effects
                 if deltas[e.key].good is not ABSENT and (
                     e.significant or (e.finding is Finding.SMALL
                                       and (shares.get(e.key) or 0.0) >= 0.1))}
    advice = (W.pin_advice({**pins, **recommend}) if verdict in ("config", "mixed")
              and recommend else "")
    new = [e.key for e in effects if e.significant and deltas[e.key].good is ABSENT]
    if advice and new:
        advice += (f" ({W.names(new)} {'is' if len(new) == 1 else 'are'} new at the culprit "
                   f"and cannot be pinned: {'its' if len(new) == 1 else 'their'} effect stays "
                   "in that history)")
    return {"recommend_pins": recommend, "pin_flags": W.pin_flags(recommend),
            "pin_advice": advice}
