"""GainReLU (trainact.nn.gain_relu): the control with LC's parameter count."""

from __future__ import annotations

import pytest
import torch
from activation_inputs import CANDIDATES, grads_of, random_input
from torch import nn

from trainact.nn.factory import make_activation
from trainact.nn.gain_relu import GainReLU


def gain_relu_reference(x: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
    """``(sum_i g_i) relu(x)``, the gains summed over their last dimension, per channel over dim 1."""
    gain = gains.sum(-1)
    if gains.dim() == 2:
        gain = gain.reshape((1, -1) + (1,) * (x.dim() - 2))
    return gain * torch.relu(x)


@pytest.mark.parametrize("candidates", [CANDIDATES, ("relu",), ("relu", "tanh"), ("relu", "sigmoid", "tanh")])
@pytest.mark.parametrize("per_channel", [False, True])
def test_gain_relu_has_lcs_parameter_count_and_starts_as_relu(candidates, per_channel):
    cfg = {"lc": {"candidates": list(candidates), "per_channel": per_channel}, "relu_gain": True}
    gain_relu, lc = make_activation("relu", 3, cfg), make_activation("lc", 3, cfg)
    assert isinstance(gain_relu, GainReLU)
    assert gain_relu.gains.shape == lc.weights.shape
    assert sum(p.numel() for p in gain_relu.parameters()) == sum(p.numel() for p in lc.parameters())
    x = torch.randn(5, 3, 4, 4) * 3
    assert torch.equal(gain_relu(x), torch.relu(x))  # bit for bit, also in half precision
    assert torch.equal(gain_relu(x.bfloat16()), torch.relu(x.bfloat16()))


def test_gain_relu_without_the_option_is_plain_relu():
    assert type(make_activation("relu", 3, {"relu_gain": False, "lc": {"per_channel": True}})) is nn.ReLU


@pytest.mark.parametrize("per_channel, shape", [(False, (2, 3, 4, 5)), (True, (2, 3, 4, 5)), (True, (4, 3))])
def test_gain_relu_gradcheck_and_reference(per_channel, shape):
    module = GainReLU(4, per_channel=per_channel, num_channels=3 if per_channel else None).double()
    with torch.no_grad():
        module.gains.copy_(
            torch.randn(module.gains.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
        )
    x = random_input(shape)
    assert torch.autograd.gradcheck(lambda x, g: gain_relu_reference(x, g), (x, module.gains))
    ours = grads_of(lambda x: module(x), [x])[1] + torch.autograd.grad(
        (module(x) * torch.linspace(-1, 1, x.numel(), dtype=x.dtype).reshape(x.shape)).sum(), module.gains
    )
    theirs = grads_of(lambda x, g: gain_relu_reference(x, g), [x, module.gains])[1]
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    torch.testing.assert_close(module(x), gain_relu_reference(x, module.gains), rtol=0, atol=0)


def test_gain_relu_repr_parameters_and_curve():
    module = GainReLU(4, per_channel=True, num_channels=2)
    assert repr(module) == "GainReLU(num_gains=4, per_channel=True, num_channels=2)"
    assert repr(GainReLU(3)) == "GainReLU(num_gains=3, per_channel=False)"
    assert module.learned_parameters() == {"gains": [[0.25] * 4] * 2}
    torch.testing.assert_close(module.curve(torch.linspace(-1, 1, 3)), torch.tensor([[0.0, 0.0, 1.0]] * 2))
    with pytest.raises(ValueError, match="num_gains"):
        GainReLU(0)
    with pytest.raises(ValueError, match="per_channel=True needs num_channels"):
        GainReLU(4, per_channel=True)
