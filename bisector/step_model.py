"""The Bayesian step model behind the noisy search: closed-form evidence for "culprit = j".

Owns the arithmetic only (marginal likelihoods, posterior weights, channel information);
bisector.noisy owns the policy (which run next, when to stop). No state, no I/O.

Run k at commit c gives y = mu + beta*[c is bad] + gamma*pos(c) + s_k + e_ck: s_k is
shared by every run with seed k (paired seeds), e_ck is not, pos(c) is the commit's place
along the history (a slow drift). mu is flat, beta and gamma are normal in units of the
seed-independent noise, sigma^2 is Jeffreys, and the seed share rho and the step's scale
are averaged over small grids, so every hypothesis has a closed-form marginal likelihood.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import special  # not scipy.stats: a second of import for one t cdf

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

RHO_GRID = np.array([0.0, 0.3, 0.5, 0.7, 0.85, 0.95, 0.99, 0.999])
_G_GRID = (2.0 ** np.arange(-1.0, 7.0)) ** 2  # prior variance of the step / sigma_e^2
PRIOR_NONE = 0.5  # P(no change): 1/2 keeps a false "regression" at <= 1 - confidence
_DRIFT_PRIOR = 1.0  # prior variance of the drift over the range / sigma_e^2
_NO_DRIFT = 1e-8  # the same, for the steps without a drift beside them
_STEP_DRIFT_SHARE = 0.2  # prior share of the steps that come with a drift
_GH_X, _GH_W = np.polynomial.hermite.hermgauss(40)


def binary_information(q: FloatArray, d: FloatArray) -> FloatArray:
    """Mutual information (bits) between X ~ Bernoulli(q) and Y = d*X + N(0, 1)."""
    q = np.clip(np.asarray(q, dtype=float), 1e-12, 1 - 1e-12)[..., None]
    d = np.asarray(d, dtype=float)[..., None]
    u = math.sqrt(2.0) * _GH_X
    y0, y1 = u, d + u
    # log p(y | x) - log p(y) for y drawn from each input
    l0, l1 = y0 * d - d * d / 2, y1 * d - d * d / 2
    from1 = -np.logaddexp(np.log(q), np.log1p(-q) - l1)
    from0 = -np.logaddexp(np.log(q) + l0, np.log1p(-q))
    info = (q[..., 0] * (from1 @ _GH_W) + (1 - q[..., 0]) * (from0 @ _GH_W)) / math.sqrt(math.pi)
    return np.maximum(info, 0.0) / math.log(2.0)


def gaussian_capacity(separation: float) -> float:
    """Capacity (bits) of the binary-input Gaussian channel, inputs `separation` sigma apart."""
    return float(binary_information(np.array(0.5), np.array(separation)))


@dataclass(frozen=True)
class Fit:
    """Marginal likelihoods and slope posteriors on the (rho, g, hypothesis) grid."""

    log_ml0: FloatArray  # (R,) no change
    log_ml: FloatArray  # (R, G, H)
    beta: FloatArray  # (R, G, H) posterior mean of the step (standardized units)
    beta_scale: FloatArray  # (R, G, H) Student-t scale
    sigma2: FloatArray  # (R, G, H) posterior mean of the total variance
    nu: int


def fit_steps(y: FloatArray, seeds: IntArray, x: FloatArray, t: FloatArray,
         drift_prior: float) -> Fit:
    """Closed-form evidence for every column h of x (a step) and for a drift alone.

    Step h: y = mu + beta*x[:, h] + gamma*t + s_seed + e; drift: y = mu + gamma*t + s + e.
    Per-seed sums give X'R^-1X for the compound-symmetric R without forming it.
    """
    n, h = y.size, x.shape[1]
    rho = RHO_GRID
    cols = np.column_stack([np.ones(n), y, t, x])  # 0: intercept, 1: y, 2: drift, 3..: steps
    s = np.zeros((int(seeds.max()) + 1, n))
    s[seeds, np.arange(n)] = 1.0
    nk, ck = s.sum(1), s @ cols
    c = rho[:, None] / (1 - rho[:, None] + nk[None, :] * rho[:, None])  # (R, K)
    gram = (cols.T @ cols)[None] - np.einsum("ku,rk,kv->ruv", ck, c, ck)
    gram /= (1.0 - rho)[:, None, None]
    used = nk > 0
    logdet = ((nk[used] - 1) * np.log1p(-rho[:, None])
              + np.log(1 - rho[:, None] + nk[used] * rho[:, None])).sum(1)
    nu = n - 1
    a11, a1y, ayy = gram[:, 0, 0], gram[:, 0, 1], gram[:, 1, 1]
    log_ml0 = (-0.5 * logdet - 0.5 * np.log(a11)
               - 0.5 * nu * np.log(np.maximum(ayy - a1y**2 / a11, 1e-12 * ayy)))
    # priors scale with the seed-independent noise: that is what a paired comparison sees
    scale_e = np.maximum(1 - rho, 1e-3)
    g = _G_GRID[None, :, None] * scale_e[:, None, None]  # (R, G, 1)
    gd = drift_prior * scale_e  # (R,)
    shape = (rho.size, _G_GRID.size, h + 1)
    a = np.zeros(shape + (3, 3))
    a[..., 0, 0] = a11[:, None, None]
    a[..., 0, 2] = a[..., 2, 0] = gram[:, 0, 2][:, None, None]
    a[..., 2, 2] = (gram[:, 2, 2] + 1 / gd)[:, None, None]
    b = np.zeros(shape + (3,))
    b[..., 0] = a1y[:, None, None]
    b[..., 2] = gram[:, 2, 1][:, None, None]
    steps = (slice(None), slice(None), slice(0, h))
    a[steps + (0, 1)] = a[steps + (1, 0)] = gram[:, 0, 3:][:, None, :]
    a[steps + (1, 1)] = np.einsum("rhh->rh", gram[:, 3:, 3:])[:, None, :] + 1 / g
    a[steps + (1, 2)] = a[steps + (2, 1)] = gram[:, 2, 3:][:, None, :]
    b[steps + (1,)] = gram[:, 1, 3:][:, None, :]
    a[..., h, 1, 1] = 1.0  # the drift model has no step: a unit placeholder, b = 0
    inv = np.linalg.inv(a)
    coef = np.einsum("...ij,...j->...i", inv, b)
    q = ayy[:, None, None] - np.einsum("...i,...i->...", b, coef)
    q = np.maximum(q, 1e-12 * ayy[:, None, None])
    log_prior_scale = np.broadcast_to(0.5 * np.log(g), shape).copy()
    log_prior_scale[..., h] = 0.0
    log_ml = (-0.5 * logdet[:, None, None] - 0.5 * np.linalg.slogdet(a)[1] - log_prior_scale
              - 0.5 * np.log(gd)[:, None, None] - 0.5 * nu * np.log(q))
    slope = coef[..., 1].copy()
    var = inv[..., 1, 1].copy()
    slope[..., h], var[..., h] = coef[..., h, 2], inv[..., h, 2, 2]
    scale = np.sqrt(var * q / max(nu, 1))
    return Fit(log_ml0, log_ml, slope, scale, q / max(nu - 2, 1), nu)


def posterior(y: FloatArray, seeds: IntArray, x: FloatArray, t: FloatArray,
               prior: FloatArray, min_effect: float) -> tuple[Fit, FloatArray, FloatArray]:
    """The fit, posterior weights on the (rho, g, hypothesis) grid (the rest is "no change"),
    and P(step > min_effect) in each cell. `prior` holds each step's and the drift's mass.

    Each step comes with and without a drift beside it, mixed: a drift term in every
    step model lets part of each run's evidence be explained away (it cost ~9 runs at
    1.5 sigma with known levels), while a real drift still finds the drifting variant.
    """
    h = x.shape[1]
    fd, fn = fit_steps(y, seeds, x, t, _DRIFT_PRIOR), fit_steps(y, seeds, x, t, _NO_DRIFT)
    base = np.log(prior)[None, None, :] - math.log(RHO_GRID.size * _G_GRID.size)
    lw_d = fd.log_ml + base + np.append(np.full(h, math.log(_STEP_DRIFT_SHARE)), 0.0)
    lw_n = fn.log_ml[..., :h] + base[..., :h] + math.log(1 - _STEP_DRIFT_SHARE)
    lw0 = fd.log_ml0 + math.log(PRIOR_NONE) - math.log(RHO_GRID.size)
    total = special.logsumexp(np.concatenate([lw_d.ravel(), lw_n.ravel(), lw0]))
    w_d, w_n = np.exp(lw_d - total), np.exp(lw_n - total)
    w = w_d.copy()
    w[..., :h] += w_n

    def mix(a: FloatArray, b: FloatArray) -> FloatArray:
        out = w_d * a
        out[..., :h] += w_n * b[..., :h]
        return np.asarray(out / np.maximum(w, 1e-300))

    def exceeds(f: Fit) -> FloatArray:
        return np.asarray(special.stdtr(f.nu, (-min_effect - f.beta) / f.beta_scale))

    fit = Fit(fd.log_ml0, fd.log_ml, mix(fd.beta, fn.beta), mix(fd.beta_scale, fn.beta_scale),
               mix(fd.sigma2, fn.sigma2), fd.nu)
    return fit, w, mix(exceeds(fd), exceeds(fn))


def unique_columns(rows: BoolArray) -> tuple[IntArray, IntArray, IntArray]:
    """(label per column, count per label, first column per label) of a boolean matrix."""
    n = rows.shape[1]
    if rows.shape[0] == 0:
        return np.zeros(n, dtype=np.int64), np.array([n]), np.array([0])
    packed = np.packbits(rows, axis=0).T
    _, first, inv, counts = np.unique(packed, axis=0, return_index=True, return_inverse=True,
                                      return_counts=True)
    return inv.reshape(-1).astype(np.int64), counts.astype(np.int64), first.astype(np.int64)
