"""The Fourier series activation (trainact.nn.fourier): its starts, periodicity, channels, precision."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from trainact.nn.fourier import Fourier


@pytest.mark.parametrize(
    "interval, tolerance",
    [((-4.0, 4.0), 0.1), ((-2.0, 2.0), 0.05), ((-1.0, 3.0), 0.05)],
)
def test_fourier_relu_fit_approximates_relu(interval, tolerance):
    module = Fourier(init_interval=interval, impl="reference")
    low, high = interval
    x = torch.linspace(low, high, 2001)
    assert (module.curve(x) - torch.relu(x)).abs().max() < tolerance
    # period = 1.5 x interval width; coefficients stay below the largest fitted value (no cancellation)
    assert module.omega.item() == pytest.approx(2 * math.pi / (1.5 * (high - low)))
    assert max(module.a.abs().max(), module.b.abs().max(), abs(module.A.item())) < high


def test_fourier_is_periodic_outside_the_interval():
    module = Fourier(impl="eager")
    period = 2 * math.pi / module.omega.item()
    x = torch.linspace(-4, 4, 50)
    torch.testing.assert_close(module(x + period), module(x), atol=2e-4, rtol=0)


def test_fourier_random_init():
    torch.manual_seed(0)
    module = Fourier(init="random", per_channel=True, num_channels=4)
    assert module.A.abs().max() == 0 and module.omega.tolist() == [1.0] * 4
    assert 0.02 < module.a.std() < 0.3 and module.a.shape == (4, 5) and module.b.shape == (4, 5)
    assert Fourier(init="random", omega=2.0).omega.item() == 2.0


def test_fourier_per_channel_parameters_broadcast_over_dim_1():
    module = Fourier(per_channel=True, num_channels=2, impl="eager")
    with torch.no_grad():
        module.A[1] += 10.0
    x = torch.zeros(3, 2, 4)
    out = module(x)
    single = Fourier(impl="eager")(x[:, 0])
    torch.testing.assert_close(out[:, 0], single)
    torch.testing.assert_close(out[:, 1], single + 10)


def test_half_precision_input_is_computed_in_float32():
    module = Fourier(impl="eager")
    with torch.no_grad():
        module.omega.fill_(3.0)  # high harmonics: 15 x, badly resolved in bf16 arithmetic
    x = torch.linspace(-4, 4, 1000).to(torch.bfloat16)
    out = module(x)
    assert out.dtype == torch.bfloat16
    exact = module(x.float())
    # only the final rounding to bf16 remains (bf16 has 8 bits of mantissa)
    assert ((out.float() - exact).abs() <= exact.abs() * 2**-8 + 1e-6).all()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        conv = nn.Conv2d(1, 1, 1)
        y = conv(torch.rand(2, 1, 4, 4))
        assert y.dtype == torch.bfloat16 and module(y).dtype == torch.bfloat16


def test_extra_repr():
    assert repr(Fourier(rank=3, per_channel=True, num_channels=8, impl="eager")) == (
        "Fourier(rank=3, per_channel=True, num_channels=8, init='relu_fit', impl='eager')"
    )
    assert repr(Fourier(init="calibrated", impl="eager")) == (
        "Fourier(rank=5, per_channel=False, init='calibrated', calibration_sigmas=3, impl='eager')"
    )
