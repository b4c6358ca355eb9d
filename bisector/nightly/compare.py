"""Which metrics regressed between a baseline and a revision: paired steps and Holm.

Pure logic: seed-keyed values in, verdicts out; no processes, files or clock. Each
metric's p-value is the one-sided paired t-test that the revision is worse (from
`decide.paired_step`); Holm's step-down procedure controls the chance of any false
alarm across the night's metrics at alpha = 1 - confidence; a regression must also
be larger than the metric's min effect.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .. import decide
from ..decide import Samples, Step
from ..model import Direction


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order: reject where <= alpha."""
    m = len(p_values)
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(sorted(range(m), key=lambda k: p_values[k])):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


@dataclass(frozen=True)
class Check:
    """One metric at the revision against the baseline, paired by seed."""

    metric: str
    direction: Direction
    baseline: Samples
    revision: Samples
    step: Step  # revision - baseline on the shared seeds
    min_effect: float
    p_value: float  # one-sided paired t-test that the revision is worse
    p_adjusted: float  # after Holm across the night's metrics
    regressed: bool

    @property
    def worse(self) -> float:
        """How much worse the revision is, positive when it regressed."""
        return self.direction.worse(0.0, self.step.effect)

    @property
    def undecided(self) -> bool:
        """Worse by more than the min effect, but not shown at the confidence asked."""
        return not self.regressed and self.worse > self.min_effect


def compare(baseline: Mapping[str, Samples], revision: Mapping[str, Samples],
            directions: Mapping[str, Direction], min_effects: Mapping[str, float],
            alpha: float) -> list[Check]:
    """Which metrics regressed: Holm-significant at `alpha` and worse by more than min effect.

    p is one minus the paired step's confidence, which is the one-sided paired
    t-test in the metric's bad direction; a deterministic probe gives p 0 or 1, and
    then the min effect alone decides.
    """
    names = list(baseline)
    steps = {n: decide.paired_step(baseline[n], revision[n], directions[n]) for n in names}
    p_values = [min(1.0, max(0.0, 1.0 - steps[n].confidence)) for n in names]
    adjusted = holm_adjust(p_values)
    checks = []
    for name, p, p_adj in zip(names, p_values, adjusted, strict=True):
        step, direction = steps[name], directions[name]
        worse = direction.worse(0.0, step.effect)
        checks.append(Check(name, direction, baseline[name], revision[name], step,
                            min_effects[name], p, p_adj,
                            regressed=p_adj <= alpha and worse > min_effects[name]))
    return checks


def check_sentence(check: Check, base: str, rev: str) -> str:
    """The comparison in one sentence, for the terminal, the summary and JUnit."""
    b, r = decide.mean(check.baseline), decide.mean(check.revision)
    moved = "fell" if check.direction is Direction.HIGHER else "rose"
    how = (f"change {check.step.effect:+.4g}, min effect {check.min_effect:.4g}, "
           f"p {check.p_adjusted:.2g} after Holm")
    if check.regressed:
        return (f"{check.metric} {moved} from {b:.4g} at the baseline {base[:8]} to {r:.4g} "
                f"at {rev[:8]} ({how}).")
    if check.undecided:
        fallen = "fallen" if check.direction is Direction.HIGHER else "risen"
        return (f"{check.metric} may have {fallen}: {b:.4g} at the baseline {base[:8]}, {r:.4g} "
                f"at {rev[:8]} ({how}, {check.step.n} paired seeds): undecided, so the "
                "baseline stays where it is.")
    return (f"No regression of {check.metric}: {b:.4g} at the baseline {base[:8]}, {r:.4g} "
            f"at {rev[:8]} ({how}).")
