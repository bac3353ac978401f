"""Autoencoder pretraining: loss falls, frozen stages stay frozen, resumption, hand-over to fine-tuning.

Four pretraining stages: the three conv stages (0-2) and the dense hidden layer ``head.1`` (3); the
output layer ``head.3`` is never pretrained."""

from __future__ import annotations

import csv
import json
import logging

import numpy as np
import pytest
import torch

from trainact.cli import main
from trainact.data.cifar import PreparedData
from trainact.nn.models import build_model
from trainact.run_files import PRETRAIN_HISTORY_COLUMNS
from trainact.training.autoencoder import AutoencoderSettings, load_pretrained, pretrain
from trainact.training.autoencoder_stages import StageDecoder, build_decoders, stage_names
from trainact.training.random_state import seed_everything

TINY_MODEL = {"filters": {"middle": [4, 4, 4]}, "hidden": 8, "impl": "eager"}
EPOCHS = 3
STAGES = 4  # three conv stages, then the dense hidden layer
DENSE = 3


def tiny_data(n_train: int = 64, n_test: int = 32, seed: int = 0) -> PreparedData:
    """Images with structure to reconstruct: a per-class colour plus smooth noise."""
    rng = np.random.default_rng(seed)

    def split(n):
        labels = rng.integers(0, 10, n)
        coarse = rng.integers(0, 60, (n, 3, 8, 8)).repeat(4, axis=2).repeat(4, axis=3)
        images = labels[:, None, None, None] * 20 + coarse
        return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.int64)

    train_images, train_labels = split(n_train)
    test_images, test_labels = split(n_test)
    return PreparedData(
        train_images, train_labels, test_images, test_labels, [f"c{i}" for i in range(10)], "0" * 32
    )


def settings(**changes) -> AutoencoderSettings:
    # ReLU keeps these tests fast (the eager Fourier kernels dominate a tiny model's time);
    # the CLI test below runs the default Fourier network.
    base = dict(
        activation="relu", epochs_per_stage=EPOCHS, learning_rate=1e-2, batch_size=8, seed=3, device="cpu"
    )
    return AutoencoderSettings(**{**base, **changes})


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    model, rows = pretrain(tiny_data(), settings(), TINY_MODEL, out, progress=False)
    return out, model, rows


def test_pretrain_csv_has_a_row_per_stage_epoch_and_the_loss_falls(full_run):
    out, _, rows = full_run
    table = read_rows(out / "pretrain.csv")
    assert list(table[0]) == list(PRETRAIN_HISTORY_COLUMNS)
    assert [(int(r["stage"]), int(r["epoch"])) for r in table] == [
        (s, e) for s in range(STAGES) for e in range(1, EPOCHS + 1)
    ]
    for stage in "0123":
        losses = [float(r["loss"]) for r in table if r["stage"] == stage]
        assert all(0 < later < earlier for earlier, later in zip(losses, losses[1:])), (stage, losses)
    stage0 = [float(r["loss"]) for r in table if r["stage"] == "0"]
    assert stage0[-1] < 0.95 * stage0[0]  # measured: 0.0605 -> 0.0546 (stage 1: 0.0135 -> 0.0012)


def test_dense_stage_learns_to_reconstruct_the_flattened_conv_features(full_run):
    _, model, rows = full_run
    assert stage_names(model) == ["stages.0", "stages.1", "stages.2", "head.1"]
    dense = [r["loss"] for r in rows if r["stage"] == DENSE]
    assert len(dense) == EPOCHS
    assert dense[-1] < 0.5 * dense[0]  # measured: 0.701 -> 0.223 -> 0.050


def test_same_seed_gives_identical_losses(full_run, tmp_path):
    _, _, rows = full_run
    _, again = pretrain(tiny_data(), settings(), TINY_MODEL, tmp_path, progress=False)
    assert [r["loss"] for r in again] == [r["loss"] for r in rows]
    _, other = pretrain(tiny_data(), settings(seed=4), TINY_MODEL, tmp_path / "other", progress=False)
    assert [r["loss"] for r in other] != [r["loss"] for r in rows]


def test_interrupted_pretraining_resumes_and_frozen_stages_do_not_change(full_run, tmp_path):
    _, full_model, full_rows = full_run
    snapshots = {}
    # ends of stages 0, 1 and 2 (the last conv stage, before the dense one), inside stages 1 and 3
    for stop in [(0, EPOCHS), (1, 1), (1, EPOCHS), (2, EPOCHS), (DENSE, 1)]:
        model, rows = pretrain(tiny_data(), settings(), TINY_MODEL, tmp_path, progress=False, stop_after=stop)
        assert (rows[-1]["stage"], rows[-1]["epoch"]) == stop
        assert not (tmp_path / "pretrained.pt").exists()
        snapshots[stop] = {k: v.clone() for k, v in model.state_dict().items()}
    model, rows = pretrain(tiny_data(), settings(), TINY_MODEL, tmp_path, progress=False)

    assert [r["loss"] for r in rows] == [r["loss"] for r in full_rows]
    final = torch.load(tmp_path / "pretrained.pt")
    assert all(torch.equal(final[k], full_model.state_dict()[k]) for k in final)

    def stage(state, k):
        prefix = f"{stage_names(full_model)[k]}."
        return {name: value for name, value in state.items() if name.startswith(prefix)}

    after = {k: snapshots[(k, EPOCHS)] for k in range(DENSE)}
    for k in range(DENSE):  # conv stage k is frozen during the later stages, the dense one included
        for name, value in stage(after[k], k).items():
            assert torch.equal(final[name], value), name
    # ... while stage 1 did learn during its own pretraining, and the dense layer during its own
    assert any(not torch.equal(after[1][n], v) for n, v in stage(after[0], 1).items())
    assert stage(after[2], DENSE).keys() == {"head.1.weight", "head.1.bias"}
    assert all(not torch.equal(final[n], v) for n, v in stage(after[2], DENSE).items())
    # the output layer is never pretrained
    for snapshot in snapshots.values():
        for name in ("head.3.weight", "head.3.bias"):
            assert torch.equal(final[name], snapshot[name]), name


def test_a_checkpoint_of_the_three_stage_pretraining_is_not_resumed(full_run, tmp_path, caplog):
    """The former code pretrained only the conv stages; its checkpoint (decoders 0-2, no stage
    list in the fingerprint) must start the pretraining again, not pass for 9 of 12 stage-epochs."""
    _, full_model, full_rows = full_run
    model, _ = pretrain(tiny_data(), settings(), TINY_MODEL, tmp_path, progress=False, stop_after=(2, EPOCHS))
    path = tmp_path / "pretrain_checkpoint.pt"
    checkpoint = torch.load(path, weights_only=False)
    old_decoders = build_decoders(model, settings().decoder)[:DENSE]
    checkpoint["fingerprint"] = settings().checkpoint_fingerprint(model=model, decoders=old_decoders)
    checkpoint["decoders"] = {
        k: v for k, v in checkpoint["decoders"].items() if not k.startswith(f"{DENSE}.")
    }
    torch.save(checkpoint, path)

    with caplog.at_level(logging.WARNING, logger="trainact.training.autoencoder"):
        model, rows = pretrain(tiny_data(), settings(), TINY_MODEL, tmp_path, progress=False)
    assert "written with other settings; pretraining from scratch" in caplog.text
    assert [r["loss"] for r in rows] == [r["loss"] for r in full_rows]
    assert all(torch.equal(v, full_model.state_dict()[k]) for k, v in model.state_dict().items())


def test_pretrained_output_layer_is_the_baseline_initialisation_and_the_other_layers_are_not(full_run):
    out, _, _ = full_run
    pretrained = torch.load(out / "pretrained.pt")
    seed_everything(settings().seed)
    baseline = build_model("middle", "relu", TINY_MODEL).state_dict()
    assert pretrained.keys() == baseline.keys()
    for name in baseline:
        unchanged = torch.equal(pretrained[name], baseline[name])
        assert unchanged == name.startswith("head.3."), name  # every conv stage and head.1 pretrained


def test_finetune_classifier_starts_from_exactly_the_pretrained_weights(full_run):
    out, model, _ = full_run
    saved = model.state_dict()
    classifier = load_pretrained(out / "pretrained.pt", settings(), TINY_MODEL)
    loaded = classifier.state_dict()
    assert loaded.keys() == saved.keys()
    assert all(torch.equal(loaded[k], saved[k].cpu()) for k in saved)


def test_cli_pretrains_then_finetunes_the_fourier_cnn(tmp_path, capsys):
    data = tiny_data()
    np.savez(
        tmp_path / "data.npz",
        train_images=data.train_images, train_labels=data.train_labels,
        test_images=data.test_images, test_labels=data.test_labels,
        class_names=np.array(data.class_names), source_md5=np.array(data.source_md5),
    )  # fmt: skip
    ae = {"epochs_per_stage": 1, "batch_size": 32}  # size middle, activation fourier: the defaults
    common = ["--data", str(tmp_path / "data.npz"), "--seed", "3", "--device", "cpu", "--no-progress"]
    params = json.dumps({"model": TINY_MODEL, "autoencoder": ae})
    assert main(["ae-pretrain", *common, "--params", params, "--out-dir", str(tmp_path / "ae")]) == 0
    assert [(r["stage"], r["epoch"]) for r in read_rows(tmp_path / "ae" / "pretrain.csv")] == [
        ("0", "1"), ("1", "1"), ("2", "1"), ("3", "1"),
    ]  # fmt: skip
    pretrained = torch.load(tmp_path / "ae" / "pretrained.pt")
    assert "stages.0.1.omega" in pretrained  # a Fourier-CNN
    seed_everything(3)
    baseline = build_model("middle", "fourier", TINY_MODEL).state_dict()
    for name in baseline:  # the dense layer and its Fourier activation are pretrained, the output layer not
        if name.startswith("head.") and not name.endswith(".scale"):  # the fixed scale is a buffer
            assert torch.equal(pretrained[name], baseline[name]) == name.startswith("head.3."), name

    params = json.dumps({"model": TINY_MODEL, "autoencoder": ae, "train": {"epochs": 1, "batch_size": 32}})
    finetune = ["ae-finetune", *common, "--pretrained", str(tmp_path / "ae" / "pretrained.pt")]
    assert main([*finetune, "--params", params, "--out-dir", str(tmp_path / "ae" / "finetune")]) == 0
    history = read_rows(tmp_path / "ae" / "finetune" / "history.csv")
    assert [r["epoch"] for r in history] == ["1"] and history[0]["status"] == "ok"

    capsys.readouterr()
    wrong_model = json.dumps(
        {"model": {**TINY_MODEL, "hidden": 9}, "autoencoder": ae, "train": {"epochs": 1}}
    )
    assert main([*finetune, "--params", wrong_model, "--out-dir", str(tmp_path / "x")]) == 2
    assert "pretrained.pt does not fit the middle-fourier model" in capsys.readouterr().err


@pytest.mark.parametrize(
    "params, needle",
    [
        ({"epochs_per_stage": 0}, "autoencoder.epochs_per_stage = 0"),
        ({"decoder": "mlp"}, "autoencoder.decoder = 'mlp'"),
        ({"learning_rate": -1.0}, "autoencoder.learning_rate = -1.0"),
        ({"size": "huge"}, "autoencoder.size = 'huge'"),
        ({"layers": 2}, "layers"),
    ],
)
def test_bad_settings_name_the_key_and_value(params, needle):
    with pytest.raises(ValueError, match=needle.replace(".", r"\.")):
        AutoencoderSettings.from_params(params)


@pytest.mark.parametrize("kind", ["conv_transpose", "upsample_conv"])
def test_decoders_invert_each_stage_shape_and_stage0_outputs_pixels(kind):
    model = build_model("middle", "relu", TINY_MODEL)
    decoders = build_decoders(model, kind)
    x = torch.rand(2, 3, 32, 32)
    assert len(decoders) == STAGES
    for stage, decoder in zip(model.stages, decoders):
        z = stage(x)
        assert decoder(z).shape == x.shape
        x = z
    h = model.head[0](x)  # the dense stage's input: the flattened conv features
    assert h.shape == (2, 4 * 4 * 4)
    assert decoders[DENSE](model.head[2](model.head[1](h))).shape == h.shape
    assert isinstance(decoders[DENSE], torch.nn.Linear)
    pixels = decoders[0](10 * torch.randn(2, 4, 16, 16))
    assert pixels.min() >= 0 and pixels.max() <= 1
    assert decoders[1].sigmoid_output is False and decoders[2].sigmoid_output is False
    with pytest.raises(ValueError, match="'dense'"):
        StageDecoder("dense", 4, 3, sigmoid_output=False)
