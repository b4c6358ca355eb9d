"""bisector.metrics against numbers computed here by other means, and its invariances."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.metrics import structural_similarity

from bisector import metrics

AMPLITUDE_KEYS = {"mae_amp", "mse_amp", "ssim_amp", "psnr_amp"}
PHASE_KEYS = {"mae_phase", "ssim_phase", "psnr_phase"}


def make_pair(seed: int = 0, shape: tuple[int, int] = (40, 48)) -> tuple[np.ndarray, np.ndarray]:
    """A smooth complex object and a noisy reconstruction of it; phases stay within +-1 rad."""
    rng = np.random.default_rng(seed)
    rows, cols = shape
    y, x = np.mgrid[0:rows, 0:cols]
    amp = 1.0 + 0.3 * np.sin(x / 4.0) * np.cos(y / 5.0)
    phase = 0.6 * np.cos(x / 6.0 + y / 7.0)
    truth = amp * np.exp(1j * phase)
    pred_amp = 0.8 * (amp + rng.normal(0, 0.05, shape))
    pred_phase = phase + rng.normal(0, 0.08, shape)
    return pred_amp * np.exp(1j * pred_phase), truth


def lstsq_plane_removed(phase: np.ndarray) -> np.ndarray:
    rows, cols = phase.shape
    y, x = np.mgrid[0:rows, 0:cols]
    design = np.column_stack([x.ravel(), y.ravel(), np.ones(x.size)])
    coeffs, *_ = np.linalg.lstsq(design, phase.ravel(), rcond=None)
    return phase - (design @ coeffs).reshape(phase.shape)


def test_evaluate_matches_an_independent_computation() -> None:
    pred, truth = make_pair()
    got = metrics.evaluate(pred, truth)

    amp_truth = np.abs(truth)
    amp_pred = np.abs(pred) * amp_truth.mean() / np.abs(pred).mean()
    amp_range = amp_truth.max() - amp_truth.min()
    amp_mse = np.mean((amp_pred - amp_truth) ** 2)
    phase_truth = lstsq_plane_removed(np.angle(truth))
    phase_pred = lstsq_plane_removed(np.angle(pred))
    unit_truth = (phase_truth + np.pi) / (2 * np.pi)
    unit_pred = (phase_pred + np.pi) / (2 * np.pi)
    expected = {
        "mae_amp": np.mean(np.abs(amp_pred - amp_truth)),
        "mse_amp": amp_mse,
        "ssim_amp": structural_similarity(amp_truth, amp_pred, data_range=amp_range),
        "psnr_amp": 10 * np.log10(amp_range**2 / amp_mse),
        "mae_phase": np.mean(np.abs(phase_pred - phase_truth)),
        "ssim_phase": structural_similarity(unit_truth, unit_pred, data_range=1.0),
        "psnr_phase": 10 * np.log10(1.0 / np.mean((unit_pred - unit_truth) ** 2)),
    }
    assert set(got) == set(expected) | {"frc50"}
    for key, value in expected.items():
        assert got[key] == pytest.approx(float(value), rel=1e-9, abs=1e-12), key
    assert all(type(value) is float for value in got.values())
    # A noisy but faithful reconstruction: good, not perfect.
    assert 0.5 < got["ssim_amp"] < 1.0 and 0.5 < got["ssim_phase"] < 1.0
    assert 0 < got["frc50"] < 20  # 40 x 48 is cropped to 40 x 40 for the FRC


def test_identical_images_score_perfectly() -> None:
    _, truth = make_pair()
    got = metrics.evaluate(truth, truth)
    for key in ("mae_amp", "mse_amp", "mae_phase"):
        assert got[key] == pytest.approx(0.0, abs=1e-12)
    assert got["ssim_amp"] == pytest.approx(1.0) and got["ssim_phase"] == pytest.approx(1.0)
    assert got["psnr_amp"] == metrics.PSNR_CAP == got["psnr_phase"]
    assert got["frc50"] == 20.0  # never below 0.5: the Nyquist ring of a 40 x 40 square


def test_psnr_is_capped_for_near_identical_images() -> None:
    _, truth = make_pair()
    got = metrics.evaluate(truth * (1 + 1e-12), truth)
    assert got["psnr_amp"] == metrics.PSNR_CAP


@settings(max_examples=25, deadline=None)
@given(
    offset=st.floats(-math.pi, math.pi),
    slope_x=st.floats(-0.04, 0.04),
    slope_y=st.floats(-0.04, 0.04),
)
def test_phase_offset_and_plane_change_nothing(
    offset: float, slope_x: float, slope_y: float
) -> None:
    # The offset may push raw phases across +-pi; the slopes keep the image
    # within one turn, where a plane is still a plane after np.angle.
    pred, truth = make_pair(shape=(32, 36))
    y, x = np.mgrid[0:32, 0:36]
    tilted = pred * np.exp(1j * (offset + slope_x * x + slope_y * y))
    before, after = metrics.evaluate(pred, truth), metrics.evaluate(tilted, truth)
    for key in before:
        assert after[key] == pytest.approx(before[key], rel=1e-7, abs=1e-9), key
    # Tilting the ground truth instead changes nothing either.
    moved_truth = metrics.evaluate(pred, truth * np.exp(1j * (offset - slope_y * y)))
    assert moved_truth["mae_phase"] == pytest.approx(before["mae_phase"], rel=1e-7)


@settings(max_examples=25, deadline=None)
@given(scale=st.floats(1e-3, 1e3))
def test_amplitude_scale_changes_nothing(scale: float) -> None:
    pred, truth = make_pair(seed=3)
    before, after = metrics.evaluate(pred, truth), metrics.evaluate(pred * scale, truth)
    for key in before:
        assert after[key] == pytest.approx(before[key], rel=1e-7, abs=1e-12), key


def test_amplitude_metrics_do_see_structure() -> None:
    pred, truth = make_pair(seed=1)
    worse = np.abs(pred) * (1 + 0.5 * np.random.default_rng(9).random(pred.shape))
    good, bad = (
        metrics.evaluate(np.abs(pred), np.abs(truth)),
        metrics.evaluate(worse, np.abs(truth)),
    )
    assert bad["mae_amp"] > good["mae_amp"] and bad["ssim_amp"] < good["ssim_amp"]
    assert bad["psnr_amp"] < good["psnr_amp"]


def test_real_images_give_amplitude_metrics_and_frc_only() -> None:
    pred, truth = make_pair()
    real = metrics.evaluate(np.abs(pred), np.abs(truth))
    mixed = metrics.evaluate(pred, np.abs(truth))
    assert set(real) == AMPLITUDE_KEYS | {"frc50"} == set(mixed)
    full = metrics.evaluate(pred, truth)
    for key in AMPLITUDE_KEYS:
        assert real[key] == pytest.approx(full[key], rel=1e-12) == mixed[key]


def test_crop_removes_the_border_before_measuring() -> None:
    pred, truth = make_pair()
    spoiled = pred.copy()
    spoiled[:3, :] = 50.0  # garbage confined to a 3-pixel border
    spoiled[:, -3:] = -50j
    clean = metrics.evaluate(pred[3:-3, 3:-3], truth[3:-3, 3:-3])
    assert metrics.evaluate(spoiled, truth, crop=3) == clean
    assert metrics.evaluate(spoiled, truth)["mae_amp"] > 2 * clean["mae_amp"]


def test_remove_phase_plane_matches_lstsq() -> None:
    rng = np.random.default_rng(5)
    phase = rng.normal(size=(13, 21)) + 0.3 * np.arange(21)[None, :] - 0.2 * np.arange(13)[:, None]
    residual = metrics.remove_phase_plane(phase)
    np.testing.assert_allclose(residual, lstsq_plane_removed(phase), atol=1e-12)
    y, x = np.mgrid[0:13, 0:21]
    np.testing.assert_allclose(metrics.remove_phase_plane(0.7 * x - 0.1 * y + 2), 0, atol=1e-12)


def ring_loop_frc(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """FRC one ring at a time, with frequencies taken from fftshift's centre."""
    n = a.shape[0]
    fa, fb = np.fft.fftshift(np.fft.fft2(a)), np.fft.fftshift(np.fft.fft2(b))
    centre = n // 2
    values = []
    for ring in range(n // 2 + 1):
        cross = power_a = power_b = 0.0
        for row in range(n):
            for col in range(n):
                if round(math.hypot(row - centre, col - centre)) == ring:
                    cross += (fa[row, col] * np.conj(fb[row, col])).real
                    power_a += abs(fa[row, col]) ** 2
                    power_b += abs(fb[row, col]) ** 2
        values.append(cross / math.sqrt(power_a * power_b))
    return np.array(values)


def test_frc_curve_matches_a_ring_by_ring_loop() -> None:
    rng = np.random.default_rng(2)
    a = rng.normal(size=(16, 16))
    b = a + rng.normal(size=(16, 16))
    # round() and np.rint() both round halves to even, so the rings agree.
    np.testing.assert_allclose(metrics.frc_curve(a, b), ring_loop_frc(a, b), atol=1e-12)
    np.testing.assert_allclose(metrics.frc_curve(a, b), metrics.frc_curve(b, a), atol=1e-12)


@pytest.mark.parametrize("cutoff", [3, 7, 12])
def test_frc50_of_a_low_pass_copy_is_half_a_ring_past_the_cutoff(cutoff: int) -> None:
    # Rings up to the cutoff correlate perfectly and the rest not at all, so
    # the interpolated crossing lies halfway between the cutoff and the next ring.
    n = 32
    image = np.random.default_rng(cutoff).normal(size=(n, n))
    k = np.fft.fftfreq(n) * n
    kept = np.rint(np.hypot(k[:, None], k[None, :])) <= cutoff
    low_pass = np.fft.ifft2(np.fft.fft2(image) * kept)
    assert metrics.frc50(low_pass, image) == pytest.approx(cutoff + 0.5)


def test_frc50_of_independent_noise_is_small() -> None:
    rng = np.random.default_rng(11)
    values = [metrics.frc50(rng.normal(size=(64, 64)), rng.normal(size=(64, 64))) for _ in range(5)]
    assert max(values) < 4  # of 32 rings
    image = rng.normal(size=(64, 64))
    assert metrics.frc50(image, image) == 32.0


def test_frc_crops_rectangles_to_their_central_square() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(20, 30)), rng.normal(size=(20, 30))
    np.testing.assert_array_equal(
        metrics.frc_curve(a, b), metrics.frc_curve(a[:, 5:25], b[:, 5:25])
    )


def test_flat_truth_amplitude_still_gives_finite_metrics() -> None:
    # A pure phase object has a flat amplitude: its range is 0, so SSIM falls
    # back to the amplitude's peak as data range instead of dividing by zero.
    pred, truth = make_pair()
    phase_only = np.exp(1j * np.angle(truth))
    got = metrics.evaluate(pred, phase_only)
    assert all(math.isfinite(value) for value in got.values())
    assert metrics.evaluate(phase_only, phase_only)["ssim_amp"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("pred", "truth", "crop", "message"),
    [
        (np.ones((8, 8)), np.ones((8, 9)), 0, "differ in shape"),
        (np.ones((1, 8, 8)), np.ones((1, 8, 8)), 0, "2-D image"),
        (np.ones((10, 10)), np.ones((10, 10)), 2, "at least 7 x 7"),
        (np.ones((10, 10)), np.ones((10, 10)), -1, "crop must be >= 0"),
        (np.full((8, 8), np.nan), np.ones((8, 8)), 0, "pred contains nan"),
        (np.array([["a"] * 8] * 8), np.ones((8, 8)), 0, "numeric"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(
    pred: np.ndarray, truth: np.ndarray, crop: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        metrics.evaluate(pred, truth, crop=crop)
