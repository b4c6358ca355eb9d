"""The commits a noisy search chooses among: their order and ancestry, and which culprit
hypotheses the testable commits can tell apart.

Pure array logic over the ancestry matrix: no statistics, no git, no state. The noisy
engine (bisector.noisy) asks it which commits must be bad and which good for a culprit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .step_model import BoolArray, IntArray, unique_columns


@dataclass(frozen=True, eq=False)
class Candidates:
    """Commits in good..bad, oldest first, bad last; anc[i, j]: j is i or an ancestor of i."""

    ids: list[str]
    anc: BoolArray

    def __post_init__(self) -> None:
        n = len(self.ids)
        if n == 0 or self.anc.shape != (n, n) or len(set(self.ids)) != n:
            raise ValueError("Candidates need distinct ids and an n x n ancestry matrix")
        if not (np.diag(self.anc).all() and self.anc[-1].all()):
            raise ValueError("every commit must be its own ancestor and an ancestor of bad")
        if np.triu(self.anc, 1).any():
            raise ValueError("ids must be in topological order (ancestors first)")

    @classmethod
    def linear(cls, ids: Sequence[str]) -> Candidates:
        n = len(ids)
        return cls(list(ids), np.tril(np.ones((n, n), dtype=bool)))


def witnesses(anc: BoolArray, untestable: BoolArray, members: list[int]) -> tuple[int, list[int]]:
    """The commit that must be bad and the parents that must be good, for a culprit class.

    Linear history [G g g u u B b] with u untestable: class {u, u, B}, witnesses B and g.
    Index -1 stands for the good endpoint.
    """
    testable = ~untestable
    bad_all = anc[:, members].all(axis=1) & testable
    bad_idx = np.flatnonzero(bad_all)
    bw = int(bad_idx[np.argmin(anc[bad_idx].sum(1))])
    good = np.flatnonzero(~anc[:, members].any(axis=1) & testable & anc[bw])
    if good.size == 0:
        return bw, [-1]
    sub = anc[np.ix_(good, good)] & ~np.eye(good.size, dtype=bool)
    return bw, [int(g) for g in good[~sub.any(axis=0)]]


def culprit_classes(anc: BoolArray, untestable: BoolArray, observed: BoolArray) -> IntArray:
    """Class label per hypothesis: hypotheses no testable commit can tell apart share one.

    A commit counts as testable until it fails (`untestable`), and for good once it gave
    a value (`observed`).
    """
    if not untestable.any():
        return np.arange(anc.shape[0], dtype=np.int64)
    return unique_columns(anc[~untestable | observed])[0]
