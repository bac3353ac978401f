"""The data-dependent start (trainact.nn.calibration): activations non-linear at the real scale,
deterministic for a seed, standardisation from the training split only, and the health measures."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trainact.nn import calibration as cal
from trainact.nn.fourier import Fourier
from trainact.nn.models import build_model
from trainact.training.random_state import seed_everything


def cifar_like(n: int = 1200, seed: int = 0) -> np.ndarray:
    """uint8 images with CIFAR-10's pixel statistics (mean about 120, std about 60, smooth)."""
    rng = np.random.default_rng(seed)
    coarse = rng.normal(120, 55, (n, 3, 8, 8))
    images = np.repeat(np.repeat(coarse, 4, axis=2), 4, axis=3) + rng.normal(0, 15, (n, 3, 32, 32))
    return np.clip(images, 0, 255).astype(np.uint8)


def shares_at_start(init: str, images: np.ndarray, size: str = "middle") -> list[tuple[float, float]]:
    """(non-linear share of each Fourier layer, that of ReLU on the same inputs) at the start."""
    seed_everything(0)
    model = build_model(size, "fourier", {"impl": "eager", "fourier": {"init": init}})
    cal.calibrate(model, images, seed=0)
    batch = cal.calibration_batch(images, 0)
    start = [cal.parameter_vector(m) for _, m in cal.activation_layers(model)]
    return [(r["nonlinear_share"], r["relu_nonlinear_share"]) for r in cal.layer_health(model, batch, start)]


def test_nonlinear_share_reference_values():
    x = torch.randn(200_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert cal.nonlinear_share(x, 3 * x + 2) == pytest.approx(0.0, abs=1e-9)
    # ReLU of a zero-mean Gaussian: var(relu) = (1/2 - 1/(2 pi)), best line slope 1/2, residual
    # var = 1/4 - 1/(2 pi)... share = sqrt((1/4 - 1/(2 pi)) / (1/2 - 1/(2 pi))) = 0.5197 at any scale
    expected = math.sqrt((0.25 - 1 / (2 * math.pi)) / (0.5 - 1 / (2 * math.pi)))
    for scale in (0.05, 1.0, 30.0):
        assert cal.nonlinear_share(scale * x, torch.relu(scale * x)) == pytest.approx(expected, abs=5e-3)
    assert math.isnan(cal.nonlinear_share(x, torch.ones_like(x)))


def test_calibrated_fourier_layers_are_as_nonlinear_as_relu_at_the_real_scale():
    """Middle CNN, pixels in [0, 1], PyTorch's default weights: every calibrated Fourier layer's
    non-linear share is within 0.1 of ReLU's on the same inputs; the [-4, 4] fit is not."""
    images = cifar_like()
    calibrated = shares_at_start("calibrated", images)
    assert len(calibrated) == 4
    for ours, relu in calibrated:
        assert abs(ours - relu) < 0.1, calibrated
    fixed = shares_at_start("relu_fit", images)
    # the old start is almost linear behind the first layer (the problem this start fixes)
    assert all(relu - ours > 0.2 for ours, relu in fixed[1:]), fixed


def test_calibration_sets_the_scale_from_each_layers_input():
    images = cifar_like()
    seed_everything(0)
    model = build_model("small", "fourier", {"impl": "reference", "fourier": {"init": "calibrated"}})
    records = cal.calibrate(model, images, seed=0)
    layers = [m for _, m in cal.activation_layers(model)]
    assert [r["name"] for r in records] == ["stages.0.1", "stages.1.1", "stages.2.1", "head.2"]
    for record, layer in zip(records, layers):
        half = 3.0 * record["input_rms"]
        assert record["calibrated"] and record["fit_interval"] == pytest.approx([-half, half])
        assert float(layer.scale) == pytest.approx(half / 4.0)  # [-4, 4] maps onto [-3 r, 3 r]
        assert layer.fit_interval == pytest.approx((-half, half))
    # the parameters are the [-4, 4] fit's, untouched: only the fixed scale differs
    reference = Fourier(init="relu_fit")
    for layer in layers:
        for name in ("A", "omega", "a", "b"):
            torch.testing.assert_close(getattr(layer, name), getattr(reference, name))
    assert model.calibration is records


def test_calibration_is_deterministic_for_a_seed_and_leaves_the_global_rng_alone():
    images = cifar_like()

    def run(seed):
        seed_everything(0)
        model = build_model("small", "fourier", {"impl": "reference", "fourier": {"init": "calibrated"}})
        records = cal.calibrate(model, images, seed=seed)
        return records, torch.rand(3)

    first, after_first = run(0)
    again, after_again = run(0)
    other, _ = run(1)
    assert first == again
    assert [r["input_rms"] for r in first] != [r["input_rms"] for r in other]
    seed_everything(0)
    build_model("small", "fourier", {"impl": "reference", "fourier": {"init": "calibrated"}})
    torch.testing.assert_close(after_first, torch.rand(3))  # as if calibrate had not run
    torch.testing.assert_close(after_first, after_again)
    assert cal.calibration_indices(5000, 0).tolist() == cal.calibration_indices(5000, 0).tolist()
    assert len(set(cal.calibration_indices(5000, 0).tolist())) == cal.CALIBRATION_IMAGES
    assert cal.calibration_indices(100, 0).tolist() == list(range(100))  # a small set: all of it


def test_relu_fit_and_random_starts_are_not_rescaled():
    images = cifar_like(300)
    for init in ("relu_fit", "random"):
        seed_everything(0)
        model = build_model("small", "fourier", {"impl": "reference", "fourier": {"init": init}})
        records = cal.calibrate(model, images, seed=0)
        assert all(not r["calibrated"] for r in records)
        assert all(float(m.scale) == 1.0 for _, m in cal.activation_layers(model))
        expected = [-4.0, 4.0] if init == "relu_fit" else None
        assert all(r["fit_interval"] == expected for r in records)


def test_standardization_uses_the_training_images_only():
    images = cifar_like(600)
    mean, std = cal.channel_statistics(images)
    pixels = images.astype(np.float64) / 255
    np.testing.assert_allclose(mean.numpy(), pixels.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(std.numpy(), pixels.std(axis=(0, 2, 3)), rtol=1e-9)
    seed_everything(0)
    model = build_model("small", "relu", {"preprocessing": "standardize"})
    cal.calibrate(model, images, seed=0)
    x = torch.as_tensor(images).float() / 255
    z = model.features(x, upto=0)
    torch.testing.assert_close(z.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.std(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-4, rtol=0)
    assert set(model.state_dict()) >= {"input_standardization.mean", "input_standardization.std"}
    # without preprocessing the state dict is what it always was, and the input passes unchanged
    plain = build_model("small", "relu", {})
    assert not any(k.startswith("input_standardization") for k in plain.state_dict())
    torch.testing.assert_close(plain.features(x[:4], upto=0), x[:4])


def test_standardization_rejects_constant_images():
    seed_everything(0)
    model = build_model("small", "relu", {"preprocessing": "standardize"})
    with pytest.raises(ValueError, match="standard deviations must be > 0"):
        cal.calibrate(model, np.full((20, 3, 32, 32), 7, np.uint8), seed=0)
    with pytest.raises(ValueError, match="unknown preprocessing 'whiten'"):
        build_model("small", "relu", {"preprocessing": "whiten"})


def test_layer_health_measures_movement_and_the_share_outside_the_fit():
    images = cifar_like(300)
    seed_everything(0)
    model = build_model("small", "fourier", {"impl": "reference", "fourier": {"init": "calibrated"}})
    cal.calibrate(model, images, seed=0)
    batch = cal.calibration_batch(images, 0)
    layers = [m for _, m in cal.activation_layers(model)]
    start = [cal.parameter_vector(m) for m in layers]
    rows = cal.layer_health(model, batch, start)
    assert all(r["param_distance"] == 0 and r["param_relative_distance"] == 0 for r in rows)
    assert all(0 <= r["outside_fit_share"] < 0.05 for r in rows)  # about 0.3 % for Gaussian inputs
    with torch.no_grad():
        layers[1].a.add_(0.5)  # move one layer's parameters by a known amount
        layers[3].set_scale(float(layers[3].scale) / 10)  # shrink the last layer's fit interval
    moved = cal.layer_health(model, batch, start)
    expected = 0.5 * math.sqrt(layers[1].a.numel())
    assert moved[1]["param_distance"] == pytest.approx(expected, rel=1e-6)
    assert moved[1]["param_relative_distance"] == pytest.approx(expected / float(start[1].norm()), rel=1e-6)
    assert moved[0]["param_distance"] == 0
    assert moved[3]["outside_fit_share"] > 0.5  # most inputs now lie outside a 10x narrower interval
