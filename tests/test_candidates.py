"""Which commits must be bad and which good for a culprit, on linear histories and merges."""

from __future__ import annotations

import numpy as np

from bisector.candidates import Candidates, culprit_classes, witnesses


def test_untestable_commits_merge_the_hypotheses_they_hide() -> None:
    # [G c0 c1 u2 u3 c4 c5=bad]: culprit u2, u3 or c4 all make c4 the first testable bad
    anc = Candidates.linear([f"c{i}" for i in range(6)]).anc
    untestable = np.array([False, False, True, True, False, False])
    labels = culprit_classes(anc, untestable, np.zeros(6, dtype=bool))
    assert labels[2] == labels[3] == labels[4]
    assert len({labels[0], labels[1], labels[2], labels[5]}) == 4
    assert witnesses(anc, untestable, [2, 3, 4]) == (4, [1])
    # a commit that gave a value before it failed still tells its neighbours apart
    observed = np.array([False, False, True, False, False, False])
    labels = culprit_classes(anc, untestable, observed)
    assert labels[2] != labels[3] and labels[3] == labels[4]
    # with nothing untestable every hypothesis is its own class; the first commit's
    # good witness is the good endpoint (-1)
    none = np.zeros(6, dtype=bool)
    assert list(culprit_classes(anc, none, none)) == list(range(6))
    assert witnesses(anc, none, [0]) == (0, [-1])


def test_a_merge_culprit_needs_every_parent_good() -> None:
    # c0 on main, c1 on a branch from good, c2 merges them (bad)
    anc = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 1]], dtype=bool)
    cands = Candidates(["c0", "c1", "c2"], anc)
    none = np.zeros(3, dtype=bool)
    assert witnesses(cands.anc, none, [2]) == (2, [0, 1])
    assert witnesses(cands.anc, none, [1]) == (1, [-1])
