"""PSO: the swarm on analytic functions, the vectorised evaluator, the resumable network run, CLI."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch

from trainact.cli import main
from trainact.data.cifar import PreparedData
from trainact.nn.models import build_model
from trainact.run_files import PSO_HISTORY_COLUMNS
from trainact.training.pso import PSOSettings, train_pso
from trainact.training.random_state import seed_everything
from trainact.training.swarm import NetworkLoss, Swarm, fitness_from_loss

TINY_MODEL = {"filters": {"middle": [4, 4, 4]}, "hidden": 8, "impl": "eager"}
SHIFT = torch.tensor([1.3, -0.7], dtype=torch.float64)


def tiny_data(n_train: int = 64, n_test: int = 32, seed: int = 0) -> PreparedData:
    """Learnable random data: each class has its own mean colour."""
    rng = np.random.default_rng(seed)

    def split(n):
        labels = rng.integers(0, 10, n)
        images = (labels[:, None, None, None] * 25) + rng.integers(0, 30, (n, 3, 32, 32))
        return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.int64)

    train_images, train_labels = split(n_train)
    test_images, test_labels = split(n_test)
    return PreparedData(
        train_images, train_labels, test_images, test_labels, [f"c{i}" for i in range(10)], "0" * 32
    )


def run_swarm(objective, particles: int, generations: int, seed: int = 0) -> tuple[Swarm, list[float]]:
    """Minimise ``objective`` (fitness = -objective) from uniform positions in [-5.12, 5.12]^2."""
    generator = torch.Generator().manual_seed(seed)
    start = (torch.rand(particles, 2, generator=generator, dtype=torch.float64) * 2 - 1) * 5.12
    swarm = Swarm(lambda x: -objective(x), inertia=0.4, c1=2.0, c2=2.0, generator=generator)
    swarm.start(start)
    best = [swarm.global_best_fitness]
    for _ in range(generations):
        swarm.step()
        best.append(swarm.global_best_fitness)
    return swarm, best


def quadratic(x):
    """Convex, ill-conditioned (1:10), minimum 0 at SHIFT."""
    return ((x - SHIFT) ** 2 * torch.tensor([1.0, 10.0], dtype=torch.float64)).sum(1)


def rastrigin(x):
    """Shifted Rastrigin: about 100 local minima in the box, global minimum 0 at SHIFT."""
    z = x - SHIFT
    return 10 * z.shape[1] + (z**2 - 10 * torch.cos(2 * math.pi * z)).sum(1)


def test_swarm_finds_the_minimum_of_a_convex_quadratic():
    swarm, best = run_swarm(quadratic, particles=10, generations=100)
    assert torch.allclose(swarm.global_best, SHIFT, atol=1e-6)  # tolerance: 1e-6 per coordinate
    assert -best[-1] < 1e-10


def test_swarm_finds_the_global_minimum_of_shifted_rastrigin():
    # 30 particles, 200 generations: seeds 0..19 all reach the global minimum (checked once);
    # the test uses seed 0. Tolerance: 1e-4 per coordinate (local minima are ~1 apart).
    swarm, best = run_swarm(rastrigin, particles=30, generations=200)
    assert torch.allclose(swarm.global_best, SHIFT, atol=1e-4)
    assert -best[-1] < 1e-6


def test_global_best_fitness_never_decreases_and_local_bests_are_their_fitness():
    swarm, best = run_swarm(rastrigin, particles=10, generations=60, seed=3)
    assert all(later >= earlier for earlier, later in zip(best, best[1:]))
    assert best[-1] > best[0]
    assert torch.allclose(-rastrigin(swarm.local_best), swarm.local_best_fitness)
    assert swarm.global_best_fitness == float(swarm.local_best_fitness.max())


def test_velocity_clamp_bounds_every_step():
    generator = torch.Generator().manual_seed(0)
    swarm = Swarm(
        lambda x: -quadratic(x), inertia=0.9, c1=2.0, c2=2.0, velocity_clamp=0.05, generator=generator
    )
    swarm.start(
        torch.full((5, 2), 4.0, dtype=torch.float64) + torch.arange(5.0, dtype=torch.float64)[:, None]
    )
    before = swarm.positions.clone()
    swarm.step()
    assert swarm.velocities.abs().max() == 0.05  # unclamped, particles 1..4 would move by ~1 to 8
    assert torch.allclose(swarm.positions - before, swarm.velocities)


def test_fitness_is_one_over_one_plus_loss():
    fitness = fitness_from_loss(torch.tensor([0.0, 1.0, 3.0, math.inf, math.nan]))
    assert fitness.tolist() == [1.0, 0.5, 0.25, 0.0, 0.0]


# The fast Fourier kernels are an autograd.Function without vmap support; the reference formula is
# plain torch ops, so a Fourier network is evaluated vectorised with impl "reference".
@pytest.mark.parametrize("activation, impl", [("relu", "eager"), ("fourier", "reference")])
def test_vectorised_and_looped_evaluation_agree_with_the_model(activation, impl):
    seed_everything(0)
    models = [build_model("middle", activation, {**TINY_MODEL, "impl": impl}) for _ in range(3)]
    positions = torch.stack([torch.nn.utils.parameters_to_vector(m.parameters()).detach() for m in models])
    images, labels = torch.rand(20, 3, 32, 32), torch.randint(0, 10, (20,))
    objective = NetworkLoss(models[0], images, labels, chunk_size=8)  # 3 chunks, the last partial
    vectorised, looped = objective.vectorised(positions), objective.looped(positions)
    direct = torch.stack(
        [torch.nn.functional.cross_entropy(m(images), labels).double() for m in models]
    ).detach()
    assert torch.allclose(vectorised, looped, rtol=1e-5, atol=1e-6)
    assert torch.allclose(looped, direct, rtol=1e-5, atol=1e-6)
    assert len(set(looped.tolist())) == 3  # the particles really are different networks


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


SETTINGS = dict(
    size="middle", particles=4, generations=6, fitness_batch_size=48, eval_train_size=32,
    eval_batch_size=16, seed=1, device="cpu",
)  # fmt: skip


def test_pso_run_writes_history_and_resumes_to_the_same_result(tmp_path):
    settings = PSOSettings(**SETTINGS)
    full = train_pso(tiny_data(), settings, TINY_MODEL, tmp_path / "full", progress=False)
    rows = read_rows(tmp_path / "full" / "history.csv")
    assert list(rows[0]) == list(PSO_HISTORY_COLUMNS)
    assert [int(r["generation"]) for r in rows] == list(range(7))
    fitness = [float(r["best_fitness"]) for r in rows]
    assert all(b >= a for a, b in zip(fitness, fitness[1:]))
    for r in rows:
        assert float(r["best_fitness"]) == pytest.approx(1 / (1 + float(r["best_loss"])), abs=1e-6)
        assert 0 <= float(r["train_acc"]) <= 1 and 0 <= float(r["test_acc"]) <= 1

    train_pso(tiny_data(), settings, TINY_MODEL, tmp_path / "split", progress=False, stop_after_generation=3)
    assert len(read_rows(tmp_path / "split" / "history.csv")) == 4
    assert not (tmp_path / "split" / "best.pt").exists()
    resumed = train_pso(tiny_data(), settings, TINY_MODEL, tmp_path / "split", progress=False)

    def values(history):
        return [{k: v for k, v in row.items() if k != "seconds"} for row in history]

    assert values(resumed) == values(full)
    a = torch.load(tmp_path / "full" / "best.pt")
    b = torch.load(tmp_path / "split" / "best.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_looped_evaluation_gives_the_same_run_as_the_vectorised_default(tmp_path):
    """pso.vectorised is "evaluation only; does not change results": the whole history and best.pt
    of vectorised: false equal the default's. Measured on this run: the swarm (positions, accuracies,
    best.pt) is identical bit for bit; vmap sums in another order, so a loss may differ in its
    last float32 bits, and best_fitness (8 decimals) by 1e-8 (tolerance: 1e-6 on loss and fitness)."""
    assert PSOSettings().vectorised is True  # the default
    runs = {}
    for vectorised in (True, False):
        settings = PSOSettings(**{**SETTINGS, "vectorised": vectorised})
        train_pso(tiny_data(), settings, TINY_MODEL, tmp_path / str(vectorised), progress=False)
        runs[vectorised] = read_rows(tmp_path / str(vectorised) / "history.csv")
    default, looped = runs[True], runs[False]
    assert len(default) == len(looped) == SETTINGS["generations"] + 1
    for a, b in zip(default, looped):
        exact = ("generation", "train_acc", "test_acc")
        assert [a[k] for k in exact] == [b[k] for k in exact]
        for key in ("best_fitness", "best_loss"):
            assert float(a[key]) == pytest.approx(float(b[key]), abs=1e-6), (a["generation"], key)
    a = torch.load(tmp_path / "True" / "best.pt")
    b = torch.load(tmp_path / "False" / "best.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_best_network_has_the_recorded_loss_and_accuracy(tmp_path):
    settings = PSOSettings(**{**SETTINGS, "generations": 2, "eval_train_size": None})
    data = tiny_data()
    history = train_pso(data, settings, TINY_MODEL, tmp_path, progress=False)
    model = build_model("middle", "relu", TINY_MODEL)
    model.load_state_dict(torch.load(tmp_path / "best.pt"))
    with torch.no_grad():
        test_logits = model(torch.from_numpy(data.test_images).float() / 255)
        train_logits = model(torch.from_numpy(data.train_images).float() / 255)
    test_acc = (test_logits.argmax(1).numpy() == data.test_labels).mean()
    train_acc = (train_logits.argmax(1).numpy() == data.train_labels).mean()
    assert history[-1]["test_acc"] == pytest.approx(test_acc, abs=1e-6)
    assert history[-1]["train_acc"] == pytest.approx(train_acc, abs=1e-6)


def test_particle_zero_starts_at_the_backprop_baseline_initialisation(tmp_path):
    settings = PSOSettings(**{**SETTINGS, "generations": 0})
    train_pso(tiny_data(), settings, TINY_MODEL, tmp_path, progress=False)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)["swarm"]
    seed_everything(settings.seed)
    baseline = build_model("middle", "relu", TINY_MODEL)
    assert torch.equal(state["positions"][0], torch.nn.utils.parameters_to_vector(baseline.parameters()))
    assert torch.count_nonzero(state["velocities"]) == 0


@pytest.mark.parametrize(
    "params, needle",
    [
        ({"particles": 0}, "pso.particles = 0"),
        ({"velocity_clamp": -1.0}, "pso.velocity_clamp = -1.0"),
        ({"inertia": -0.1}, "pso.inertia = -0.1"),
        ({"fitness_batch_size": 0}, "pso.fitness_batch_size = 0"),
        ({"activation": "tanh"}, "pso.activation = 'tanh'"),
        ({"swarm_size": 10}, "swarm_size"),
    ],
)
def test_bad_settings_name_the_key_and_value(params, needle):
    with pytest.raises(ValueError, match=needle.replace(".", r"\.")):
        PSOSettings.from_params(params)


def test_cli_runs_pso(tmp_path, capsys):
    data = tiny_data()
    np.savez(
        tmp_path / "data.npz",
        train_images=data.train_images, train_labels=data.train_labels,
        test_images=data.test_images, test_labels=data.test_labels,
        class_names=np.array(data.class_names), source_md5=np.array(data.source_md5),
    )  # fmt: skip
    pso_params = {k: v for k, v in SETTINGS.items() if k not in ("seed", "device")}
    params = {"model": TINY_MODEL, "pso": {**pso_params, "generations": 1}}
    base = ["pso", "--data", str(tmp_path / "data.npz"), "--seed", "0", "--out-dir", str(tmp_path / "run")]
    base += ["--no-progress", "--device", "cpu"]
    assert main(base + ["--params", json.dumps(params)]) == 0
    assert len(read_rows(tmp_path / "run" / "history.csv")) == 2 and (tmp_path / "run" / "best.pt").exists()

    capsys.readouterr()
    too_big = {"model": TINY_MODEL, "pso": {"fitness_batch_size": 1000}}
    assert main(base + ["--params", json.dumps(too_big)]) == 2
    assert "pso.fitness_batch_size = 1000 exceeds the 64" in capsys.readouterr().err


def test_vectorised_evaluation_of_a_non_vmappable_activation_says_what_to_change():
    model = build_model("middle", "fourier", TINY_MODEL)  # impl "eager": the custom autograd.Function
    positions = torch.nn.utils.parameters_to_vector(model.parameters()).detach()[None]
    objective = NetworkLoss(model, torch.rand(4, 3, 32, 32), torch.randint(0, 10, (4,)), chunk_size=4)
    with pytest.raises(RuntimeError, match="set pso.vectorised to false"):
        objective.vectorised(positions)
    assert torch.isfinite(objective.looped(positions)).all()


def test_pso_checkpoints_by_time_and_sets_a_damaged_one_aside(tmp_path, monkeypatch, caplog):
    """An hour between checkpoints: one, after the last generation. A truncated checkpoint is
    renamed with a warning and the swarm starts again, to the same result."""
    from trainact.training import checkpoints

    saved = []
    real = checkpoints.save_checkpoint
    monkeypatch.setattr(
        "trainact.training.checkpoints.save_checkpoint",
        lambda path, state: saved.append(len(state["history"])) or real(path, state),
    )
    monkeypatch.setenv("TRAINACT_CHECKPOINT_INTERVAL", "3600")
    settings = PSOSettings(**SETTINGS)
    full = train_pso(tiny_data(), settings, TINY_MODEL, tmp_path, progress=False)
    assert saved == [settings.generations + 1]
    checkpoint = tmp_path / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    with caplog.at_level("WARNING"):
        again = train_pso(tiny_data(), settings, TINY_MODEL, tmp_path, progress=False)
    assert len(list(tmp_path.glob("checkpoint.pt.damaged-*"))) == 1 and "cannot be read" in caplog.text
    assert [r["best_loss"] for r in again] == [r["best_loss"] for r in full]


def test_pso_summary_records_the_result_and_how_it_ran(tmp_path):
    settings = PSOSettings(**{**SETTINGS, "generations": 2})
    history = train_pso(tiny_data(), settings, TINY_MODEL, tmp_path, progress=False)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["generations"] == 2 and summary["best_loss"] == history[-1]["best_loss"]
    assert summary["test_acc"] == history[-1]["test_acc"]
    assert summary["device"] == {"type": "cpu", "name": "cpu"}
    assert summary["activation_kernels"] == {
        "implementations": [],
        "compile_failure": None,
        "pool_extension_failure": None,
    }  # ReLU
