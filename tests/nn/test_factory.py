"""make_activation (trainact.nn.factory): modules from the config's model slice, errors naming the value."""

from __future__ import annotations

import pytest
from torch import nn

from trainact.nn.factory import make_activation
from trainact.nn.fourier import Fourier
from trainact.nn.linear_combination import LinearCombination


def test_make_activation_builds_configured_modules():
    assert isinstance(make_activation("relu", 16, {}), nn.ReLU)
    fourier = make_activation(
        "fourier",
        16,
        {"impl": "eager", "fourier": {"rank": 3, "per_channel": True}, "hidden": 128},
    )
    assert isinstance(fourier, Fourier) and fourier.rank == 3 and fourier.num_channels == 16
    assert fourier.impl == "eager" and fourier.a.shape == (16, 3)
    lc = make_activation("lc", 16, {"impl": "eager", "lc": {"init": "one_hot:tanh", "impl": "reference"}})
    assert isinstance(lc, LinearCombination) and lc.impl == "reference" and lc.num_channels is None
    assert lc.weights.tolist() == [0.0, 0.0, 1.0, 0.0]


@pytest.mark.parametrize(
    "name, cfg, message",
    [
        ("swish", {}, r"unknown activation 'swish'; allowed: 'relu', 'fourier', 'lc'"),
        (
            "fourier",
            {"fourier": {"degree": 5}},
            r"unknown fourier option 'degree'; allowed: 'rank', ",
        ),
        (
            "fourier",
            {"fourier": {"num_channels": 5}},
            r"unknown fourier option 'num_channels'",
        ),
        (
            "lc",
            {"impl": "fast"},
            r"unknown activation impl 'fast'; allowed: 'auto', 'compiled', 'eager', 'reference'",
        ),
        (
            "lc",
            {"lc": {"init": "one_hot:elu"}},
            r"unknown LC init 'one_hot:elu'; allowed: 'uniform', 'one_hot:relu'",
        ),
        ("lc", {"lc": {"candidates": ["relu", "elu"]}}, r"unknown LC candidate 'elu'"),
        (
            "fourier",
            {"fourier": {"init": "zeros"}},
            r"unknown Fourier init 'zeros'; allowed: 'calibrated', 'relu_fit', 'random'",
        ),
        (
            "fourier",
            {"fourier": {"init_interval": [2, -2]}},
            r"low < high, got \[2, -2\]",
        ),
        (
            "lc",
            {"lc": "uniform"},
            r"model config 'lc' must be a dict of options, got 'uniform'",
        ),
    ],
)
def test_make_activation_errors_name_the_bad_value(name, cfg, message):
    with pytest.raises(ValueError, match=message):
        make_activation(name, 8, cfg)


def test_relu_gain_matches_lc_candidates_without_relu():
    """The GainReLU control takes LC's weight shape whatever the start: candidates without ReLU
    (where LC's default start one_hot:relu does not exist) still give one gain per candidate."""
    cfg = {"relu_gain": True, "lc": {"candidates": ["sigmoid", "tanh"], "per_channel": True}}
    gain_relu = make_activation("relu", 3, cfg)
    assert gain_relu.gains.shape == (3, 2)
