"""Settings dataclasses: the paper schedule, TrainSettings checks, the config-slice rules and checkpoint
fingerprints.

Expected values are written out by hand (the paper's Section 2.2, eq. (1)), not recomputed with
the code under test.
"""

from __future__ import annotations

import dataclasses
import math
import re

import pytest
from torch import nn

from trainact.training.settings import ConfigSection
from trainact.training.train_settings import TrainSettings


@dataclasses.dataclass(frozen=True)
class ToySettings(ConfigSection):
    """A settings class with the base class's defaults (SECTION, RESUMABLE_ACROSS)."""

    size: int = 1
    widths: tuple[int, ...] = (4, 8)
    name: str = "toy"
    device: str | None = None


# ------------------------------------------------------------------------ the paper's schedule


def test_paper_schedule_constants():
    from trainact import names
    from trainact.analysis import thresholds

    assert names.PAPER_LR_BOUNDARIES == (20, 40, 60)
    assert names.PAPER_LEARNING_RATES == (1e-3, 1e-4, 1e-5, 1e-6)
    assert thresholds.PAPER_SCHEDULE_EPOCHS == 60
    assert thresholds.PAPER_TRAIN_IMAGES == 50000
    assert thresholds.MIN_SEEDS_FOR_VERDICT == 3


def test_train_settings_defaults_are_the_papers():
    s = TrainSettings()
    assert (s.epochs, s.batch_size, s.eval_batch_size, s.seed, s.device) == (80, 128, 1000, 0, None)
    assert s.lr_boundaries == (20, 40, 60) and s.learning_rates == (1e-3, 1e-4, 1e-5, 1e-6)
    assert (s.rho, s.eps) == (0.95, 1e-7)


def test_learning_rate_steps_after_each_boundary():
    """lr = rates[i] for boundaries[i-1] < epoch <= boundaries[i]: the boundary epoch keeps the old rate."""
    s = TrainSettings(lr_boundaries=(2, 5), learning_rates=(1.0, 0.5, 0.25))
    expected = {0: 1.0, 1: 1.0, 2: 1.0, 3: 0.5, 4: 0.5, 5: 0.5, 6: 0.25, 100: 0.25}
    assert {epoch: s.learning_rate(epoch) for epoch in expected} == expected
    # integer rates in the config come back as floats (the optimizer and the history want floats)
    rate = TrainSettings(lr_boundaries=(1,), learning_rates=(3, 2)).learning_rate(2)
    assert rate == 2.0 and type(rate) is float
    # without boundaries one rate for every epoch
    assert TrainSettings(lr_boundaries=(), learning_rates=(0.1,)).learning_rate(500) == 0.1


# ---------------------------------------------------------------------------- TrainSettings checks


@pytest.mark.parametrize(
    "params, message",
    [
        ({"epochs": 0}, "train.epochs = 0: must be >= 1"),
        ({"batch_size": 0}, "train.batch_size = 0: must be >= 1"),
        ({"eval_batch_size": 0}, "train.eval_batch_size = 0: must be >= 1"),
        (
            {"learning_rates": (1e-3, 1e-4)},
            "train.learning_rates = [0.001, 0.0001]: "
            "needs one more entry than train.lr_boundaries = [20, 40, 60]",
        ),
        (
            {"lr_boundaries": (20, 60, 40, 80), "learning_rates": (5e-1, 4e-1, 3e-1, 2e-1, 1e-1)},
            "train.lr_boundaries = [20, 60, 40, 80]: must be strictly increasing",  # sorted: [20, 40, 60, 80]
        ),
        (
            {"learning_rates": (1e-3, 0.0, 1e-5, 1e-6)},
            "train.learning_rates = [0.001, 0.0, 1e-05, 1e-06]: must all be > 0",
        ),
        ({"learning_rates": (1e-3, 1e-4, 1e-5, -1e-6)}, "must all be > 0"),
        ({"learning_rates": (math.nan, 1e-4, 1e-5, 1e-6)}, "must all be > 0"),
        ({"rho": 1.0}, "train.rho = 1.0: must be in [0, 1)"),
        ({"rho": -0.1}, "train.rho = -0.1: must be in [0, 1)"),
        ({"eps": 0.0}, "train.eps = 0.0: must be > 0"),
        ({"eps": math.nan}, "train.eps = nan: must be > 0"),
    ],
)
def test_train_settings_reject_bad_values_with_the_exact_message(params, message):
    with pytest.raises(ValueError) as caught:
        TrainSettings(**params)
    if message.startswith("train."):
        assert str(caught.value) == message
    else:
        assert message in str(caught.value)


@pytest.mark.parametrize(
    "params",
    [
        {"epochs": 1, "batch_size": 1, "eval_batch_size": 1},  # the smallest allowed sizes
        {"rho": 0.0},
        {"rho": 0.999},
        {"eps": 1e-12},
        {"lr_boundaries": (10,), "learning_rates": (1e-2, 1e-3)},
        {"lr_boundaries": (), "learning_rates": (1e-2,)},
    ],
)
def test_train_settings_accept_the_edge_values(params):
    s = TrainSettings(**params)
    for key, value in params.items():
        assert getattr(s, key) == value


# -------------------------------------------------------------------------- ConfigSection rules


def test_from_params_converts_lists_to_tuples_and_lets_overrides_win():
    s = TrainSettings.from_params(
        {"epochs": 5, "lr_boundaries": [2], "learning_rates": [0.1, 0.01], "device": "cpu"},
        device=None,  # a CLI flag that was not given: the config's value stays
        seed=7,
    )
    assert s == TrainSettings(epochs=5, lr_boundaries=(2,), learning_rates=(0.1, 0.01), device="cpu", seed=7)
    assert type(s.lr_boundaries) is tuple and type(s.learning_rates) is tuple
    assert TrainSettings.from_params({"device": "cpu"}, device="cuda").device == "cuda"
    toy = ToySettings.from_params({"widths": [1, 2, 3]})
    assert toy.widths == (1, 2, 3) and type(toy.widths) is tuple
    assert ToySettings.from_params({}) == ToySettings()


def test_from_params_names_every_unknown_key_and_the_known_ones():
    with pytest.raises(ValueError) as caught:
        ToySettings.from_params({"sise": 2, "name": "x"}, colour="red")
    assert str(caught.value) == (
        "unknown settings setting(s) ['colour', 'sise']; known: ['device', 'name', 'size', 'widths']"
    )
    with pytest.raises(ValueError, match=re.escape("unknown train setting(s) ['momentum']")):
        TrainSettings.from_params({}, momentum=0.9)
    # an override that is None is no key at all, even an unknown one
    assert ToySettings.from_params({}, colour=None) == ToySettings()


def test_fail_raises_section_key_value_why():
    with pytest.raises(ValueError) as caught:
        ToySettings.fail("size", "big", "must be a number")
    assert str(caught.value) == "settings.size = 'big': must be a number"


def test_as_dict_is_plain_json_values():
    assert ToySettings().as_dict() == {"size": 1, "widths": [4, 8], "name": "toy", "device": None}
    assert TrainSettings().as_dict() == {
        "epochs": 80,
        "batch_size": 128,
        "lr_boundaries": [20, 40, 60],
        "learning_rates": [1e-3, 1e-4, 1e-5, 1e-6],
        "rho": 0.95,
        "eps": 1e-7,
        "eval_batch_size": 1000,
        "train_eval_images": 10000,
        "snapshot_epochs": [],
        "activation_lr_scale": 1.0,
        "seed": 0,
        "device": None,
    }


# --------------------------------------------------------------------------- checkpoint fingerprints


def test_checkpoint_fingerprint_leaves_out_only_what_a_resume_may_change():
    assert ConfigSection.RESUMABLE_ACROSS == ("device",)
    assert TrainSettings.RESUMABLE_ACROSS == ("device", "eval_batch_size", "epochs", "snapshot_epochs")
    assert ToySettings(device="cuda").checkpoint_fingerprint() == {"size": 1, "widths": [4, 8], "name": "toy"}
    train = TrainSettings(device="cuda", epochs=3, eval_batch_size=10, snapshot_epochs=(1, 2))
    assert train.checkpoint_fingerprint() == {
        "train_eval_images": 10000,
        "activation_lr_scale": 1.0,
        "batch_size": 128,
        "lr_boundaries": [20, 40, 60],
        "learning_rates": [1e-3, 1e-4, 1e-5, 1e-6],
        "rho": 0.95,
        "eps": 1e-7,
        "seed": 0,
    }
    # a longer run, another device or evaluation chunking: same fingerprint; anything else: not
    resumable = TrainSettings(device="cpu", epochs=80, eval_batch_size=1000)
    assert resumable.checkpoint_fingerprint() == train.checkpoint_fingerprint()
    assert TrainSettings(seed=1).checkpoint_fingerprint() != train.checkpoint_fingerprint()
    assert TrainSettings(batch_size=64).checkpoint_fingerprint() != train.checkpoint_fingerprint()


def test_checkpoint_fingerprint_holds_each_modules_structure_under_its_keyword():
    model, decoder = nn.Linear(2, 3), nn.Sequential(nn.ReLU())
    fingerprint = ToySettings().checkpoint_fingerprint(model=model, decoders=decoder)
    assert fingerprint == {
        "size": 1,
        "widths": [4, 8],
        "name": "toy",
        "model": "Linear(in_features=2, out_features=3, bias=True)",
        "decoders": "Sequential(\n  (0): ReLU()\n)",
    }
    other = ToySettings().checkpoint_fingerprint(model=nn.Linear(2, 4), decoders=decoder)
    assert other != fingerprint
