"""The training step over static buffers (trainact.training.graph_step): on the CPU it must train
bit for bit as the ordinary step (classifier_step on gathered batches), make no host
synchronisation, and hand its optimiser state to and from the ordinary step's checkpoints. The
graph logic (warm-up, one graph per learning rate and batch size, the fallback) runs here with a
stand-in for CUDA's graphs that replays the captured step eagerly."""

from __future__ import annotations

import copy
import csv
import json

import numpy as np
import pytest
import torch
from torch import nn

from trainact.data.cifar import PreparedData
from trainact.data.loader import DeviceDataset
from trainact.nn.models import build_model
from trainact.training import graph_step
from trainact.training.graph_step import (
    HostSyncCounter,
    TrainStepper,
    set_capturable,
    step_mode,
)
from trainact.training.random_state import seed_everything
from trainact.training.step import EpochTotals, classifier_step, rmsprop
from trainact.training.train import fit
from trainact.training.train_settings import TrainSettings

TINY_MODEL = {"filters": {"small": [4, 4, 4]}, "hidden": 8, "impl": "eager"}
BATCH = 16
#: 70 images in batches of 16: four full batches and a short one of 6.
IMAGES = 70


def dataset(n: int = IMAGES) -> DeviceDataset:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, n)
    images = np.clip(labels[:, None, None, None] * 25 + rng.integers(0, 40, (n, 3, 32, 32)), 0, 255)
    return DeviceDataset(images.astype(np.uint8), labels, "cpu")


def network(activation: str = "lc"):
    seed_everything(0)
    model = build_model("small", activation, TINY_MODEL)
    optimizer = rmsprop(model.parameters(), lr=1e-3, rho=0.95, eps=1e-7)
    return model, optimizer


def ordinary_epochs(model, optimizer, data, rates, seed=0):
    """Today's loop: classifier_step on the batches of DeviceDataset.batches. Returns the sums."""
    sums = []
    for epoch, lr in enumerate(rates, start=1):
        for group in optimizer.param_groups:
            group["lr"] = lr
        totals = EpochTotals("cpu")
        for images, labels in data.batches(BATCH, shuffle=True, seed=seed, epoch=epoch):
            classifier_step(model, nn.CrossEntropyLoss(), optimizer, images, labels, totals)
        sums.append((totals.loss_sum.clone(), totals.correct.clone()))
    return sums


def stepper_epochs(stepper, optimizer, data, rates, seed=0):
    sums = []
    for epoch, lr in enumerate(rates, start=1):
        for group in optimizer.param_groups:
            group["lr"] = lr
        totals = stepper.epoch_totals()
        for index in data.batch_indices(BATCH, seed=seed, epoch=epoch):
            stepper.step(index)
        sums.append((totals.loss_sum.clone(), totals.correct.clone()))
    return sums


def assert_same_training(a, b):
    """Same weights, optimiser state and epoch sums, bit for bit."""
    (model_a, optimizer_a, sums_a), (model_b, optimizer_b, sums_b) = a, b
    for x, y in zip(model_a.state_dict().values(), model_b.state_dict().values(), strict=True):
        assert torch.equal(x, y)
    state_a, state_b = optimizer_a.state_dict()["state"], optimizer_b.state_dict()["state"]
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        assert torch.equal(state_a[key]["square_avg"], state_b[key]["square_avg"])
        assert float(state_a[key]["step"]) == float(state_b[key]["step"])
    assert len(sums_a) == len(sums_b)
    for (loss_a, correct_a), (loss_b, correct_b) in zip(sums_a, sums_b, strict=True):
        assert torch.equal(loss_a, loss_b) and torch.equal(correct_a, correct_b)


class StandInGraphs:
    """CUDA's graphs on the CPU: the warm-up runs the step; a capture keeps it and computes
    nothing, as a real capture; a replay runs it under a HostSyncCounter and finds no host
    synchronisation (on which a real capture would have failed)."""

    def __init__(self, fail_capture: BaseException | None = None) -> None:
        self.fail_capture = fail_capture
        self.warmups = self.captures = self.replays = 0

    def warmup(self, step):
        self.warmups += 1
        step()

    def capture(self, step):
        if self.fail_capture is not None:
            raise self.fail_capture
        self.captures += 1
        return _StandInGraph(self, step)


class _StandInGraph:
    def __init__(self, graphs, step):
        self.graphs, self.step = graphs, step

    def replay(self):
        self.graphs.replays += 1
        with HostSyncCounter() as counter:
            self.step()
        assert counter.syncs == []


RATES = (1e-3, 1e-3, 1e-4, 1e-4, 1e-4)


@pytest.mark.parametrize("activation", ["relu", "fourier", "lc"])
def test_the_static_step_trains_bit_for_bit_as_the_ordinary_one(activation):
    """Two epochs (four full batches and a short one each) and a change of learning rate."""
    data = dataset()
    model, optimizer = network(activation)
    ordinary = (model, optimizer, ordinary_epochs(model, optimizer, data, (1e-3, 1e-4)))
    model, optimizer = network(activation)
    stepper = TrainStepper(model, nn.CrossEntropyLoss(), optimizer, data, mode="static")
    static = (model, optimizer, stepper_epochs(stepper, optimizer, data, (1e-3, 1e-4)))
    assert_same_training(ordinary, static)
    assert stepper.record() == {
        "mode": "static", "requested": "static", "fallback": None,
        "graphs": 0, "graph_steps": 0, "eager_steps": 10,
    }  # fmt: skip


def test_graphs_per_learning_rate_and_batch_size_after_warm_up():
    """Five epochs, the rate changes after two. The full batches warm up three steps, then their
    graph is captured; the short last batch, one per epoch, only in epoch 4; the new rate
    captures new graphs (its batch sizes already warm) and drops the old rate's."""
    data = dataset()
    model, optimizer = network()
    ordinary = (model, optimizer, ordinary_epochs(model, optimizer, data, RATES))
    model, optimizer = network()
    graphs = StandInGraphs()
    stepper = TrainStepper(model, nn.CrossEntropyLoss(), optimizer, data, mode="cuda_graph", backend=graphs)
    graphed = (model, optimizer, stepper_epochs(stepper, optimizer, data, RATES))
    assert_same_training(ordinary, graphed)
    # warm-up: 3 full batches, and the short batches of epochs 1-3
    assert (graphs.warmups, graphs.captures) == (6, 3)  # (1e-3, 16), (1e-4, 16), (1e-4, 6)
    assert sorted(stepper._graphs) == [((1e-4,), 6), ((1e-4,), 16)]
    assert stepper.record() == {
        "mode": "cuda_graph", "requested": "cuda_graph", "fallback": None,
        "graphs": 3, "graph_steps": 25 - 6, "eager_steps": 6,
    }  # fmt: skip
    assert graphs.replays == 25 - 6


def test_graphs_are_captured_again_when_the_optimiser_state_is_replaced():
    """A graph replays at the addresses it was captured at: after a load_state_dict of the
    optimiser (new state tensors) the next epoch drops the graphs and captures new ones."""
    data = dataset()
    model, optimizer = network()
    graphs = StandInGraphs()
    stepper = TrainStepper(model, nn.CrossEntropyLoss(), optimizer, data, mode="cuda_graph", backend=graphs)
    stepper_epochs(stepper, optimizer, data, RATES[:1])
    assert len(stepper._graphs) == 1
    stepper.epoch_totals()
    assert len(stepper._graphs) == 1  # nothing moved
    optimizer.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    stepper.epoch_totals()
    assert stepper._graphs == {}


def test_a_failed_capture_falls_back_to_the_ordinary_step_with_its_reason():
    data = dataset()
    model, optimizer = network()
    ordinary = (model, optimizer, ordinary_epochs(model, optimizer, data, RATES))
    model, optimizer = network()
    failing = StandInGraphs(fail_capture=RuntimeError("operation not permitted when stream is capturing"))
    stepper = TrainStepper(model, nn.CrossEntropyLoss(), optimizer, data, mode="cuda_graph", backend=failing)
    fallen = (model, optimizer, stepper_epochs(stepper, optimizer, data, RATES))
    assert_same_training(ordinary, fallen)
    record = stepper.record()
    assert record["mode"] == "ordinary" and record["graphs"] == 0 and record["eager_steps"] == 25
    assert record["fallback"] == (
        "capture of the graph for batch size 16, lr (0.001,): RuntimeError: operation not permitted "
        "when stream is capturing"
    )


def test_a_failed_warm_up_falls_back_too():
    data = dataset()
    model, optimizer = network()
    ordinary = (model, optimizer, ordinary_epochs(model, optimizer, data, RATES[:2]))
    model, optimizer = network()

    class FailingWarmup(StandInGraphs):
        def warmup(self, step):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    stepper = TrainStepper(
        model, nn.CrossEntropyLoss(), optimizer, data, mode="cuda_graph", backend=FailingWarmup()
    )
    assert_same_training(ordinary, (model, optimizer, stepper_epochs(stepper, optimizer, data, RATES[:2])))
    assert stepper.record()["fallback"].startswith(
        "warm-up of the graph for batch size 16, lr (0.001,): OutOfMemory"
    )


def test_the_static_step_makes_no_host_synchronisation_and_the_same_operations_every_step():
    data = dataset()
    model, optimizer = network("fourier")
    stepper = TrainStepper(model, nn.CrossEntropyLoss(), optimizer, data, mode="static")
    stepper.epoch_totals()
    indices = list(data.batch_indices(BATCH, seed=0, epoch=1))
    stepper.step(indices[0])  # the first step creates RMSProp's state
    counts = []
    for index in indices[1:4]:
        with HostSyncCounter() as counter:
            stepper.step(index)
        assert counter.syncs == []
        counts.append(counter.ops)
    assert counts[0] == counts[1] == counts[2] and sum(counts[0].values()) > 100
    # the running sums are read once per epoch, after the steps: that read synchronises
    with HostSyncCounter() as counter:
        stepper.totals.loss_sum.item()
    assert counter.syncs == ["aten._local_scalar_dense.default"]


def test_the_counter_flags_what_synchronises():
    x = torch.arange(6.0)
    with HostSyncCounter() as counter:
        float(x.sum())
        x[x > 2] = 0
        x.nonzero()
        bool(x.any())
        torch.equal(x, x)
        y = x * 2  # no synchronisation
    assert counter.syncs == [
        "aten._local_scalar_dense.default",
        "aten.index_put_.default (boolean mask)",
        "aten.nonzero.default",
        "aten._local_scalar_dense.default",
        "aten.equal.default",
    ]
    assert counter.ops["aten.mul.Tensor"] == 1 and y.shape == x.shape


def test_checkpoints_pass_between_the_ordinary_and_the_static_step():
    """An optimiser state saved by one step resumes in the other, also one saved by a graph
    run (capturable, step counters on the device as float32), to the same training."""
    data = dataset()
    model, optimizer = network()
    ordinary_epochs(model, optimizer, data, RATES[:1])
    saved = copy.deepcopy((model.state_dict(), optimizer.state_dict()))
    reference = (model, optimizer, ordinary_epochs(model, optimizer, data, RATES[1:3]))

    as_if_graphed = copy.deepcopy(saved[1])
    for group in as_if_graphed["param_groups"]:
        group["capturable"] = True
    for state in as_if_graphed["state"].values():
        state["step"] = state["step"].to(torch.float32)
    for optimizer_state in (saved[1], as_if_graphed):
        model, optimizer = network()
        model.load_state_dict(saved[0])
        optimizer.load_state_dict(optimizer_state)
        stepper = TrainStepper(model, nn.CrossEntropyLoss(), optimizer, data, mode="static")
        resumed = (model, optimizer, stepper_epochs(stepper, optimizer, data, RATES[1:3]))
        assert_same_training(reference, resumed)
        assert all(group["capturable"] is False for group in optimizer.param_groups)

    # and back: the static step's state resumes in the ordinary step
    model, optimizer = network()
    stepper = TrainStepper(model, nn.CrossEntropyLoss(), optimizer, data, mode="static")
    stepper_epochs(stepper, optimizer, data, RATES[:1])
    state = copy.deepcopy((model.state_dict(), optimizer.state_dict()))
    model, optimizer = network()
    model.load_state_dict(state[0])
    optimizer.load_state_dict(state[1])
    assert_same_training(reference, (model, optimizer, ordinary_epochs(model, optimizer, data, RATES[1:3])))


def test_set_capturable_moves_the_step_counters_and_back():
    model, optimizer = network("relu")
    ordinary_epochs(model, optimizer, dataset(), RATES[:1])
    set_capturable(optimizer, True)
    steps = [state["step"] for state in optimizer.state.values()]
    assert all(group["capturable"] for group in optimizer.param_groups)
    assert all(s.dtype == torch.float32 and float(s) == 5 for s in steps)
    set_capturable(optimizer, False)
    assert not any(group["capturable"] for group in optimizer.param_groups)
    assert all(state["step"].device.type == "cpu" for state in optimizer.state.values())


def test_the_mode_comes_from_the_argument_or_the_environment(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.delenv(graph_step.STEP_MODE_ENV, raising=False)
    assert (step_mode(None, cpu), step_mode(None, cuda)) == ("static", "cuda_graph")
    monkeypatch.setenv(graph_step.STEP_MODE_ENV, "ordinary")
    assert step_mode(None, cuda) == "ordinary" and step_mode("static", cuda) == "static"
    with pytest.raises(ValueError, match="unknown training step mode 'graphs'"):
        step_mode("graphs", cpu)
    model, optimizer = network("relu")
    stepper = TrainStepper(model, nn.CrossEntropyLoss(), optimizer, dataset(), mode="cuda_graph")
    assert stepper.record()["mode"] == "static" and stepper.record()["fallback"] == "no CUDA device (cpu)"


def train_tiny(out_dir, activation):
    """test_train's tiny run: 96 images in batches of 32, 4 epochs, a change of rate after 2."""
    settings = TrainSettings(
        epochs=4, batch_size=32, lr_boundaries=(2,), learning_rates=(1e-3, 1e-4), device="cpu"
    )
    rng = np.random.default_rng(0)

    def split(n):
        labels = rng.integers(0, 10, n)
        images = (labels[:, None, None, None] * 25 + rng.integers(0, 30, (n, 3, 32, 32))).clip(0, 255)
        return images.astype(np.uint8), labels.astype(np.int64)

    (train_images, train_labels), (test_images, test_labels) = split(96), split(40)
    data = PreparedData(
        train_images=train_images, train_labels=train_labels, test_images=test_images,
        test_labels=test_labels, class_names=[f"class{i}" for i in range(10)], source_md5="0" * 32,
    )  # fmt: skip
    seed_everything(settings.seed)
    model = build_model("small", activation, TINY_MODEL)
    return fit(model, data, settings, out_dir, progress=False)


def read_history(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_fit_records_the_step_and_trains_as_the_ordinary_step(tmp_path, monkeypatch):
    """The trainer end to end: the default on the CPU is the static step; the ordinary one
    ($TRAINACT_TRAIN_STEP=ordinary) gives the same history and weights."""
    monkeypatch.delenv(graph_step.STEP_MODE_ENV, raising=False)
    train_tiny(tmp_path / "static", activation="lc")
    monkeypatch.setenv(graph_step.STEP_MODE_ENV, "ordinary")
    train_tiny(tmp_path / "ordinary", activation="lc")

    def comparable(path):
        return [
            {k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in read_history(path)
        ]

    assert comparable(tmp_path / "static" / "history.csv") == comparable(
        tmp_path / "ordinary" / "history.csv"
    )
    a, b = (torch.load(tmp_path / name / "model.pt") for name in ("static", "ordinary"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    static = json.loads((tmp_path / "static" / "summary.json").read_text())["train_step"]
    ordinary = json.loads((tmp_path / "ordinary" / "summary.json").read_text())["train_step"]
    assert (static["mode"], static["requested"], static["fallback"]) == ("static", "auto", None)
    assert (ordinary["mode"], ordinary["requested"]) == ("ordinary", "ordinary")
    assert static["eager_steps"] == ordinary["eager_steps"] == 4 * 3  # 4 epochs of 96 / 32
