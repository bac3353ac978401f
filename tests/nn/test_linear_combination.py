"""The linear combination activation (trainact.nn.linear_combination): starts, guard, repr."""

from __future__ import annotations

import pytest
import torch
from activation_inputs import CANDIDATES

from trainact.nn.linear_combination import LC_DEFAULT_INIT, LinearCombination


@pytest.mark.parametrize("name", CANDIDATES)
@pytest.mark.parametrize("impl", ["eager", "reference"])
def test_lc_one_hot_equals_candidate(name, impl):
    module = LinearCombination(init=f"one_hot:{name}", impl=impl)
    x = torch.linspace(-6, 6, 101)
    expected = {
        "relu": torch.relu,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "linear": lambda t: t,
    }[name](x)
    torch.testing.assert_close(module(x), expected, atol=3e-7, rtol=0)


def test_lc_uniform_init_is_the_average():
    module = LinearCombination(init="uniform", impl="eager")
    x = torch.linspace(-3, 3, 13)
    average = (torch.relu(x) + torch.sigmoid(x) + torch.tanh(x) + x) / 4
    torch.testing.assert_close(module(x), average)
    assert module.weights.tolist() == [0.25] * 4


@pytest.mark.parametrize("impl", ["eager", "reference"])
@pytest.mark.parametrize("weight_sum, denominator", [(0.0, 1e-2), (4e-3, 1e-2), (-4e-3, -1e-2), (-0.5, -0.5)])
def test_lc_guard_near_zero_weight_sum(impl, weight_sum, denominator):
    """The denominator is sign(s) * max(|s|, eps), sign(0) = +1: finite values and gradients."""
    module = LinearCombination(eps=1e-2, impl=impl)
    raw = torch.tensor([0.7, -0.2, 0.5, -1.0], dtype=torch.float64)
    with torch.no_grad():
        module.weights.copy_(raw + (weight_sum - raw.sum()) / 4)
    x = torch.linspace(-2, 2, 9, requires_grad=True)
    out = module(x)
    out.sum().backward()
    acts = torch.stack([torch.relu(x), torch.sigmoid(x), torch.tanh(x), x]).detach()
    numerator = (module.weights.detach()[:, None] * acts).sum(0)
    torch.testing.assert_close(out.detach(), numerator / denominator, atol=1e-5, rtol=1e-5)
    assert torch.isfinite(x.grad).all() and torch.isfinite(module.weights.grad).all()
    inside_band = abs(weight_sum) < 1e-2
    # Inside the band the denominator is constant: d act/d w_k = act_k / denominator.
    # Outside it is eq. (8): (act_k - act) / s.
    per_point = acts / denominator if inside_band else (acts - out.detach()) / weight_sum
    torch.testing.assert_close(module.weights.grad, per_point.sum(1), atol=1e-4, rtol=1e-4)


def test_lc_default_start_is_relu():
    """The default start is the config schema's (model.lc.init: one_hot:relu): the layer starts as
    ReLU, weight 1 on it."""
    module = LinearCombination(impl="eager")
    assert LC_DEFAULT_INIT == "one_hot:relu" and module.init == LC_DEFAULT_INIT
    assert module.weights.tolist() == [1.0, 0.0, 0.0, 0.0]
    x = torch.linspace(-3, 3, 13)
    torch.testing.assert_close(module(x), torch.relu(x))
    with pytest.raises(
        ValueError, match=r"unknown LC init 'one_hot:relu'; allowed: 'uniform', 'one_hot:tanh'"
    ):
        LinearCombination(candidates=("tanh",))
    assert LinearCombination(candidates=("tanh",), init="uniform").weights.tolist() == [1.0]


def test_extra_repr():
    assert repr(LinearCombination(candidates=("relu", "tanh"))) == (
        "LinearCombination(candidates=('relu', 'tanh'), per_channel=False, init='one_hot:relu', "
        "eps=0.01, impl='auto')"
    )
    assert repr(LinearCombination(candidates=("relu", "tanh"), init="uniform")) == (
        "LinearCombination(candidates=('relu', 'tanh'), per_channel=False, init='uniform', "
        "eps=0.01, impl='auto')"
    )
