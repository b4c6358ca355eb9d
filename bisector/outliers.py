"""Runs that lie far from where they belong: a training that diverged yet reported a metric.

Pure: values in, the runs to set aside out. `outliers` screens the noisy search's runs
(commit by commit, against the endpoints' levels), `outlying` an attribution's cells (a
median polish over cells and seeds). Both err towards keeping a run: a run set aside is
still stored and shown, only left out of means, pairs and decisions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .attribute import Cell

# A run this many robust sds from its commit's median (3 runs or more there), and half the
# step, is set aside: a training that diverged yet reported a finite metric (an SSIM of 0.1
# beside 0.88 +- 0.02 is 39 sd off). The Gaussian model read one as a level or as a noise
# many times larger (1.5 sd step, 2% of runs 10 sd low: 5 of 30 hunts "no-regression").
# Not 6: the demo's real training has a run 10 sd low among 16 (a heavy tail, not a
# divergence), which 6 set aside.
_RUN_SD = 12.0


def outliers(obs: list[tuple[int, int, float]], bad: int) -> frozenset[int]:
    """Positions of runs more than _RUN_SD robust sds, and half the step, from where they
    belong.

    At a commit with three runs or more, that is its median (three tell which run is the
    odd one); at a commit with fewer, anywhere between the endpoints' medians (a commit
    truly outside them is kept from its third run on). A commit whose median lies that far
    outside keeps every run: two diverged runs of three would make the third look odd.
    The sd is the pooled median absolute deviation at commits with five runs or more (at
    three the median sits on a run and shrinks it). Too few runs, or no spread: none.
    """
    by_commit: dict[int, list[int]] = {}
    for k, (i, _, _) in enumerate(obs):
        by_commit.setdefault(i, []).append(k)
    y = np.array([v for _, _, v in obs])
    median = {i: float(np.median(y[ks])) for i, ks in by_commit.items() if len(ks) >= 3}
    pooled = [y[by_commit[i]] - m for i, m in median.items() if len(by_commit[i]) >= 5]
    if sum(d.size for d in pooled) < 10 or min(len(by_commit.get(e, ())) for e in (-1, bad)) < 5:
        return frozenset()
    scale = 1.4826 * float(np.median(np.abs(np.concatenate(pooled))))
    if scale <= 0:
        return frozenset()
    levels = [median[-1], median[bad]]  # the endpoints have five runs or more
    far = max(_RUN_SD * scale, abs(levels[0] - levels[1]) / 2)
    lo, hi = min(levels) - far, max(levels) + far
    aside = {k for i, m in median.items() if lo <= m <= hi
             for k in by_commit[i] if abs(y[k] - m) > far}
    aside |= {k for ks in by_commit.values() if len(ks) < 3 for k in ks
              if not lo <= y[k] <= hi}
    return frozenset(aside)


# A cell's run this many robust sds from its cell's level and its seed's effect, and as far
# outside every cell's level and half their spread, is set aside: a training that diverged
# (one at 0.1 beside levels 0.61 and 0.86 had read "object_big explains 63%", or verdict
# "none"). The demo's seed 2 trains 0.024 worse than its other seeds with object_big on
# (levels 0.74 and 0.88): a real effect of the seed there, which 6 sd alone set aside.
_CELL_SD = 12.0


def outlying(values: Mapping[Cell, Mapping[int, float]]) -> set[tuple[Cell, int]]:
    """(cell, seed) values a diverged run would give, from a median polish over the cells
    (each its own level) and the seeds (each an additive effect), in robust sds of a
    run's noise (its seed's effect and its own part). Far from the fit alone is not
    enough: an effect that differs by seed is far from it too, but stays among the cells'
    levels, or near them. Fewer than three cells or three seeds, or no spread: none."""
    cells = list(values)
    seeds = sorted({s for v in values.values() for s in v})
    if len(cells) < 3 or len(seeds) < 3:
        return set()
    y = np.array([[values[c].get(s, np.nan) for s in seeds] for c in cells])
    level, effect = np.zeros(len(cells)), np.zeros(len(seeds))
    for _ in range(10):
        level += np.nanmedian(y - level[:, None] - effect[None, :], axis=1)
        effect += np.nanmedian(y - level[:, None] - effect[None, :], axis=0)
    r = y - level[:, None] - effect[None, :]
    adjusted = y - effect[None, :]
    # a run's noise is its seed's effect and its own part (a probe whose noise follows the
    # seed alone leaves no residual, and a diverged run would pass unseen); each from
    # pairwise differences, since medians of a few values sit on the values themselves
    own = _pairwise_sd([row[~np.isnan(row)] for row in adjusted])
    scale = math.hypot(own, _pairwise_sd([effect]))
    if not scale > 0:
        return set()
    far = _CELL_SD * scale
    out = max(far, float(np.ptp(level)) / 2)
    beyond = (adjusted < level.min() - out) | (adjusted > level.max() + out)
    return {(cells[i], seeds[j]) for i, j in zip(*np.nonzero((np.abs(r) > far) & beyond),
                                                strict=True)}


def _pairwise_sd(groups: Sequence[Any]) -> float:
    """A robust sd from the differences within each group (the median of |a - b|)."""
    diffs = [np.abs(g[:, None] - g[None, :])[np.triu_indices(len(g), 1)] for g in groups]
    pooled = np.concatenate(diffs) if diffs else np.empty(0)
    return 1.4826 * float(np.median(pooled)) / math.sqrt(2) if pooled.size else 0.0
