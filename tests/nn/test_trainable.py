"""What the trainable activations share (trainact.nn.trainable): input check, compiled modules
against the reference, parameter export, curves."""

from __future__ import annotations

import json

import pytest
import torch
from activation_inputs import grads_of

from trainact.nn.fourier import Fourier
from trainact.nn.linear_combination import LinearCombination


@pytest.mark.slow
@pytest.mark.parametrize("cls", [Fourier, LinearCombination])
@pytest.mark.parametrize("per_channel", [False, True])
def test_compiled_module_float32_matches_reference(cls, per_channel):
    torch.manual_seed(0)
    module = cls(
        per_channel=per_channel,
        num_channels=6 if per_channel else None,
        impl="compiled",
    )
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.2)
    for shape in [
        (8, 6, 7, 7),
        (5, 6, 7, 7),
        (3, 6),
    ]:  # two batch sizes share one graph
        x = (torch.randn(shape) * 3).requires_grad_()
        out, grads = grads_of(lambda x, *p: module(x), (x, *module.parameters()))
        module.impl = "reference"
        ref_out, ref_grads = grads_of(lambda x, *p: module(x), (x, *module.parameters()))
        module.impl = "compiled"
        torch.testing.assert_close(out, ref_out, atol=2e-5, rtol=1e-4)
        for grad, ref_grad in zip(grads, ref_grads, strict=True):
            torch.testing.assert_close(grad, ref_grad, atol=1e-3, rtol=1e-4)  # sums over many terms


def test_per_channel_rejects_wrong_channel_count():
    module = Fourier(per_channel=True, num_channels=4)
    with pytest.raises(
        ValueError,
        match=r"4 channels expects input \(N, 4, \*\), got shape \(2, 3, 5\)",
    ):
        module(torch.zeros(2, 3, 5))


@pytest.mark.parametrize(
    "module",
    [
        Fourier(),
        Fourier(per_channel=True, num_channels=3, init="random"),
        LinearCombination(per_channel=True, num_channels=2),
    ],
    ids=["fourier", "fourier-per-channel", "lc-per-channel"],
)
def test_learned_parameters_round_trip(module):
    values = module.learned_parameters()
    assert set(values) == {name for name, _ in module.named_parameters()} | {
        name for name, _ in module.named_buffers()
    }
    assert all(isinstance(v, list) for v in values.values())
    values = json.loads(json.dumps(values))  # plain floats
    clone = type(module)(
        **({"per_channel": True, "num_channels": module.num_channels} if module.per_channel else {})
    )
    clone.load_state_dict({name: torch.tensor(v) for name, v in values.items()})
    x = torch.linspace(-3, 3, 7)
    torch.testing.assert_close(clone.curve(x), module.curve(x))


def test_curve_shapes_and_no_grad():
    x = torch.linspace(-2, 2, 11)
    per_layer = Fourier().curve(x)
    per_channel = LinearCombination(per_channel=True, num_channels=3, init="uniform").curve(x)
    assert per_layer.shape == (11,) and not per_layer.requires_grad
    assert per_channel.shape == (3, 11)
    torch.testing.assert_close(per_channel[1], (torch.relu(x) + torch.sigmoid(x) + torch.tanh(x) + x) / 4)
