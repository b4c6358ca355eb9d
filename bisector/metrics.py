"""Reconstruction metrics that bisector computes itself.

Owns the comparison of a predicted image with its ground truth: amplitude
errors and SSIM, phase errors and SSIM after plane removal, PSNR and the
FRC 0.5 crossing, following the conventions of a ptychography project's
evaluation code. A probe that reports these instead of its project's own
numbers cannot have a change to that project's evaluation code pass for a
model regression. Plain NumPy and scikit-image on 2-D arrays; this module
must not import torch (bisector.kit converts tensors before calling here).

Conventions, for a prediction `pred` and ground truth `truth`:

- amplitude is `abs` of a complex image (a real image is its own amplitude);
  the prediction's amplitude is scaled by mean(truth) / mean(pred) before any
  amplitude metric (not when mean(pred) is 0);
- SSIM and PSNR of the amplitude use the ground truth's range (max - min) as
  data range, or max(abs(truth)) when the truth is flat, or 1 when it is zero;
- phase is `np.angle` after rotating each image so its mean complex value is
  real (a constant phase offset then cannot wrap values across +-pi); then a
  least-squares plane is removed from each image independently; SSIM and PSNR
  of the phase use (phase + pi) / (2 pi) with data range 1;
- PSNR is capped at PSNR_CAP (100 dB): identical images would otherwise give
  inf, which is not a finite metric the probe protocol can carry;
- `frc50` compares the two complex images as the metrics above see them
  (amplitude scaled, phase offset and plane removed), so it responds to
  amplitude and phase structure alike and is blind to a global phase; for
  real images it compares the amplitudes. Images that are not square are
  center-cropped to a square first.

Phase metrics need both images complex; with a real image on either side,
`evaluate` returns the amplitude metrics and `frc50` only.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray
from skimage.metrics import structural_similarity

PSNR_CAP = 100.0  # dB; what identical images score
MIN_SIDE = 7  # scikit-image's default SSIM window needs 7 x 7 pixels
NO_POWER = 1e-20  # share of an image's power below which an FRC ring counts as empty

Real = NDArray[np.float64]


def evaluate(pred: Any, truth: Any, *, crop: int = 0) -> dict[str, float]:
    """All metrics of `pred` against `truth`, as plain floats.

    Keys: mae_amp, mse_amp, ssim_amp, psnr_amp, frc50, and, when both images
    are complex, mae_phase, ssim_phase, psnr_phase. `crop` pixels are removed
    from every border of both images first.
    """
    pred_arr, truth_arr = _checked_pair(pred, truth, crop)
    amp_pred, amp_truth = _amplitude(pred_arr), _amplitude(truth_arr)
    result = amplitude_metrics(amp_pred, amp_truth)
    if not (np.iscomplexobj(pred_arr) and np.iscomplexobj(truth_arr)):
        result["frc50"] = frc50(amp_pred, amp_truth)
        return result
    phase_pred = remove_phase_plane(_centered_phase(pred_arr))
    phase_truth = remove_phase_plane(_centered_phase(truth_arr))
    result.update(_phase_scores(phase_pred, phase_truth))
    # The FRC sees both images as the metrics above do: amplitude scaled,
    # phase offset and plane removed.
    result["frc50"] = frc50(
        _scaled(amp_pred, amp_truth) * np.exp(1j * phase_pred),
        amp_truth * np.exp(1j * phase_truth),
    )
    return result


def amplitude_metrics(pred: Any, truth: Any) -> dict[str, float]:
    """mae_amp, mse_amp, ssim_amp and psnr_amp of two amplitude images.

    Complex input is reduced to its amplitude; `pred` is scaled to the mean
    of `truth` first.
    """
    amp_pred, amp_truth = (_amplitude(a) for a in _checked_pair(pred, truth, 0))
    scaled = _scaled(amp_pred, amp_truth)
    data_range = _amplitude_range(amp_truth)
    mse = float(np.mean((scaled - amp_truth) ** 2))
    return {
        "mae_amp": float(np.mean(np.abs(scaled - amp_truth))),
        "mse_amp": mse,
        "ssim_amp": _ssim(scaled, amp_truth, data_range),
        "psnr_amp": _psnr(mse, data_range),
    }


def phase_metrics(pred: Any, truth: Any) -> dict[str, float]:
    """mae_phase, ssim_phase and psnr_phase of two complex images."""
    pred_arr, truth_arr = _checked_pair(pred, truth, 0)
    if not (np.iscomplexobj(pred_arr) and np.iscomplexobj(truth_arr)):
        raise ValueError("phase metrics need two complex images")
    phase_pred = remove_phase_plane(_centered_phase(pred_arr))
    phase_truth = remove_phase_plane(_centered_phase(truth_arr))
    return _phase_scores(phase_pred, phase_truth)


def _phase_scores(phase_pred: Real, phase_truth: Real) -> dict[str, float]:
    # Scaled to [0, 1] for an image the size of one turn, as the project does.
    unit_pred = (phase_pred + math.pi) / (2 * math.pi)
    unit_truth = (phase_truth + math.pi) / (2 * math.pi)
    unit_mse = float(np.mean((unit_pred - unit_truth) ** 2))
    return {
        "mae_phase": float(np.mean(np.abs(phase_pred - phase_truth))),
        "ssim_phase": _ssim(unit_pred, unit_truth, 1.0),
        "psnr_phase": _psnr(unit_mse, 1.0),
    }


def remove_phase_plane(phase: Any) -> Real:
    """`phase` minus its least-squares plane a*x + b*y + c.

    On a full grid the centered x and y coordinates are orthogonal to each
    other and to the constant, so the fit separates into three projections.
    """
    values = np.asarray(phase, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"phase must be a 2-D array, got shape {values.shape}")
    rows, cols = values.shape
    y = np.arange(rows, dtype=np.float64) - (rows - 1) / 2
    x = np.arange(cols, dtype=np.float64) - (cols - 1) / 2
    plane = np.full(values.shape, values.mean())
    if cols > 1:
        plane += np.outer(np.ones(rows), x) * (values @ x).sum() / (rows * (x @ x))
    if rows > 1:
        plane += np.outer(y, np.ones(cols)) * (y @ values).sum() / (cols * (y @ y))
    result: Real = values - plane
    return result


def frc_curve(a: Any, b: Any) -> Real:
    """Fourier ring correlation of two images, one value per ring 0 .. n // 2.

    Ring r holds the frequencies whose distance from zero frequency rounds to
    r (in cycles per image side); ring n // 2 is Nyquist and frequencies in
    the corners beyond it are left out. A ring where either image has no
    power (under NO_POWER of its total) scores 0. Images that are not square
    are center-cropped to a square of the smaller side; complex images are
    correlated as they are.
    """
    img_a, img_b = (_center_square(x) for x in _checked_pair(a, b, 0, min_side=2))
    n = img_a.shape[0]
    freq_a, freq_b = np.fft.fft2(img_a), np.fft.fft2(img_b)
    k = np.fft.fftfreq(n) * n
    rings = np.rint(np.hypot(k[:, None], k[None, :])).astype(np.intp)
    nyquist = n // 2
    inside = rings <= nyquist
    index = rings[inside]

    def ring_sum(values: NDArray[Any]) -> Real:
        summed = np.bincount(index, weights=values[inside], minlength=nyquist + 1)
        return summed.astype(np.float64)

    cross = ring_sum(np.real(freq_a * np.conj(freq_b)))
    power_a, power_b = ring_sum(np.abs(freq_a) ** 2), ring_sum(np.abs(freq_b) ** 2)
    # Round-off leaves a band-limited image ~1e-30 of power in its empty rings;
    # dividing by that would turn noise into a correlation.
    has_power = (power_a > NO_POWER * power_a.sum()) & (power_b > NO_POWER * power_b.sum())
    curve: Real = np.zeros(nyquist + 1)
    np.divide(cross, np.sqrt(power_a * power_b), out=curve, where=has_power)
    return curve


def frc50(a: Any, b: Any) -> float:
    """The ring where the FRC of `a` and `b` first falls below 0.5.

    Linearly interpolated between that ring and the one before it, so the
    value is a spatial frequency in cycles per image side. When the curve
    never falls below 0.5 the result is n // 2, the Nyquist ring (the best
    possible value); when ring 0 is already below, 0.
    """
    curve = frc_curve(a, b)
    below = np.flatnonzero(curve < 0.5)
    if below.size == 0:
        return float(curve.size - 1)
    ring = int(below[0])
    if ring == 0:
        return 0.0
    before, after = float(curve[ring - 1]), float(curve[ring])
    return float(ring - 1 + (before - 0.5) / (before - after))


def _checked_pair(pred: Any, truth: Any, crop: int, min_side: int = MIN_SIDE) -> tuple[Any, Any]:
    """Both images as float64 or complex128 arrays of one 2-D shape, cropped."""
    arrays = []
    for name, value in (("pred", pred), ("truth", truth)):
        array = np.asarray(value)
        if array.ndim != 2:
            raise ValueError(
                f"{name} must be a 2-D image, got shape {array.shape}"
                " (use np.squeeze or pick one image of a batch)"
            )
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
            raise ValueError(f"{name} must be numeric, got dtype {array.dtype}")
        dtype = np.complex128 if np.iscomplexobj(array) else np.float64
        array = array.astype(dtype, copy=False)
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name} contains nan or inf values")
        arrays.append(array)
    first, second = arrays
    if first.shape != second.shape:
        raise ValueError(f"pred and truth differ in shape: {first.shape} vs {second.shape}")
    if crop < 0:
        raise ValueError(f"crop must be >= 0, got {crop}")
    if crop:
        first, second = first[crop:-crop, crop:-crop], second[crop:-crop, crop:-crop]
    if min(first.shape, default=0) < min_side:
        raise ValueError(
            f"images of shape {arrays[0].shape} cropped by {crop} leave {first.shape};"
            f" need at least {min_side} x {min_side} pixels"
        )
    return first, second


def _amplitude(image: NDArray[Any]) -> Real:
    amplitude: Real = np.abs(image) if np.iscomplexobj(image) else image.astype(np.float64)
    return amplitude


def _scaled(amp_pred: Real, amp_truth: Real) -> Real:
    """The prediction scaled to the mean of the truth (unchanged if its mean is 0)."""
    mean_pred = float(np.mean(amp_pred))
    if mean_pred == 0:
        return amp_pred
    scaled: Real = amp_pred * (float(np.mean(amp_truth)) / mean_pred)
    return scaled


def _amplitude_range(amp_truth: Real) -> float:
    spread = float(np.max(amp_truth) - np.min(amp_truth))
    if spread > 0:
        return spread
    # A flat truth (a pure phase object) has no range; SSIM would divide by zero.
    peak = float(np.max(np.abs(amp_truth)))
    return peak if peak > 0 else 1.0


def _centered_phase(image: NDArray[Any]) -> Real:
    """np.angle of the image turned so its mean complex value is real."""
    mean = complex(np.mean(image))
    if mean != 0:
        image = image * (abs(mean) / mean)
    phase: Real = np.angle(image)
    return phase


def _ssim(pred: Real, truth: Real, data_range: float) -> float:
    # scikit-image has no type hints.
    score = structural_similarity(truth, pred, data_range=data_range)  # type: ignore[no-untyped-call]
    return float(score)


def _psnr(mse: float, data_range: float) -> float:
    if mse <= 0:
        return PSNR_CAP
    return min(PSNR_CAP, 10.0 * math.log10(data_range**2 / mse))


def _center_square(image: NDArray[Any]) -> NDArray[Any]:
    rows, cols = image.shape
    side = min(rows, cols)
    top, left = (rows - side) // 2, (cols - side) // 2
    square: NDArray[Any] = image[top : top + side, left : left + side]
    return square
