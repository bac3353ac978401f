"""The CNN's weight initialisation (model.init) and the ReLU-with-gain control (model.relu_gain)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from trainact.nn.gain_relu import GainReLU
from trainact.nn.models import WEIGHT_INITS, PaperCNN, build_model, filters_for, parameter_count
from trainact.training.random_state import seed_everything

ACTIVATIONS = ("relu", "fourier", "lc")


def built(activation: str, cfg: dict, seed: int = 0) -> nn.Module:
    seed_everything(seed)
    return build_model("small", activation, {"impl": "eager", **cfg})


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_pytorch_init_is_the_models_own_construction(activation):
    """The default draws nothing after construction: the weights are PaperCNN's own, bit for bit,
    with or without the key."""
    seed_everything(0)
    constructed = PaperCNN(filters_for("small"), activation, model_cfg={"impl": "eager"}).state_dict()
    for cfg in ({}, {"init": "pytorch"}):
        state = built(activation, cfg).state_dict()
        assert list(state) == list(constructed)
        assert all(torch.equal(state[k], constructed[k]) for k in state)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_glorot_uniform_init_zero_biases_and_weights_within_the_bound(activation):
    model = built(activation, {"init": "glorot_uniform"})
    default = built(activation, {})
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(layers) == 5
    for layer in layers:
        weight = layer.weight.detach()
        fan_out, fan_in = layer.weight.shape[0], layer.weight[0].numel()
        receptive = layer.weight[0, 0].numel()  # 9 for a 3x3 conv, 1 for a dense layer
        bound = math.sqrt(6 / (fan_in + fan_out * receptive))
        assert torch.equal(layer.bias, torch.zeros_like(layer.bias))
        assert float(weight.abs().max()) <= bound
        # uniform on [-b, b]: the largest of hundreds of draws comes close to the bound
        assert float(weight.abs().max()) > 0.9 * bound
    # the activations' own parameters are not re-drawn
    for (_, ours), (_, theirs) in zip(model.activation_modules(), default.activation_modules(), strict=True):
        assert all(torch.equal(a, b) for a, b in zip(ours.parameters(), theirs.parameters(), strict=True))


def test_unknown_init_is_refused():
    with pytest.raises(ValueError, match="unknown init 'he'"):
        build_model("small", "relu", {"init": "he"})
    assert WEIGHT_INITS == ("pytorch", "glorot_uniform")


@pytest.mark.parametrize("per_channel", [False, True])
def test_relu_gain_network_starts_as_the_relu_network_with_lcs_parameter_count(per_channel):
    cfg = {"relu_gain": True, "lc": {"per_channel": per_channel}}
    gain = built("relu", cfg)
    relu = built("relu", {})
    assert len([m for m in gain.modules() if isinstance(m, GainReLU)]) == 4
    assert parameter_count(gain) == parameter_count(built("lc", cfg))
    images = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(gain(images), relu(images))
    # only the ReLU network changes: a trainable activation ignores the key
    assert repr(built("lc", cfg)) == repr(built("lc", {"lc": {"per_channel": per_channel}}))
