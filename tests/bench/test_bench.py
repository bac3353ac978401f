"""Throughput bench: result structure, baseline ratio, CLI output (tiny, eager settings)."""

from __future__ import annotations

import json

import pytest

from trainact.bench.throughput import format_table, run_bench
from trainact.cli import main

REQUIRED_KEYS = {"size", "activation", "images_per_s", "ratio_to_relu"}


# Scripted step times (seconds) per network: the first step (warm-up, also reported as the first
# step's time), then the three timed steps.
SCRIPTED_SECONDS = {
    "relu": [9.0, 0.5, 0.1, 0.2],
    "fourier": [5.0, 0.4, 0.8, 0.5],
    "lc": [1.0, 0.25, 0.25, 1.0],
}


def test_run_bench_measures_every_network_against_relu(monkeypatch):
    """The real steps run, but each reports a scripted time, so every number is known by hand:
    medians of the timed steps relu 0.2 s, fourier 0.5 s, lc 0.25 s; batch 4 -> 20, 8 and 16
    images/s; ratios to ReLU 1, 0.4 and 0.8; parameter counts of the small networks 81,290 (ReLU),
    + 4 x 12 Fourier parameters = 81,338, + 4 x 4 LC weights = 81,306."""
    from trainact.bench import throughput as bench

    calls = {}
    real = bench._Trainee.step

    def scripted(self):
        real(self)
        calls[self.activation] = calls.get(self.activation, -1) + 1
        return SCRIPTED_SECONDS[self.activation][calls[self.activation]]

    monkeypatch.setattr(bench._Trainee, "step", scripted)
    results = run_bench(
        ["small"],
        ["fourier", "lc"],
        batch_size=4,
        steps=3,
        warmup=1,
        device="cpu",
        impl="eager",
        progress=False,
    )
    assert calls == {"relu": 3, "fourier": 3, "lc": 3}  # 4 steps each
    assert [(r.size, r.activation) for r in results] == [
        ("small", "relu"),
        ("small", "fourier"),
        ("small", "lc"),
    ]
    assert [r.median_step_s for r in results] == [0.2, 0.5, 0.25]
    assert [r.images_per_s for r in results] == pytest.approx([20.0, 8.0, 16.0])
    assert [r.ratio_to_relu for r in results] == pytest.approx([1.0, 0.4, 0.8])
    assert [r.first_step_s for r in results] == [9.0, 5.0, 1.0]
    assert [r.parameters for r in results] == [81_290, 81_338, 81_306]
    table = format_table(results)
    assert table.splitlines()[0].split()[:4] == [
        "size",
        "activation",
        "params",
        "images/s",
    ]
    assert table.splitlines()[2:] == [
        "small   relu          81,290      20.0    1.00         9.00",
        "small   fourier       81,338       8.0    0.40         5.00",
        "small   lc            81,306      16.0    0.80         1.00",
    ]


def test_bench_cli_json(capsys):
    status = main(
        [
            "bench",
            "--sizes",
            "small",
            "--activations",
            "relu",
            "lc",
            "--batch-size",
            "4",
            "--steps",
            "2",
            "--warmup",
            "1",
            "--device",
            "cpu",
            "--impl",
            "eager",
            "--json",
            "--no-progress",
        ]
    )
    assert status == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["activation"] for row in rows] == ["relu", "lc"]
    assert all(REQUIRED_KEYS <= set(row) for row in rows)
    assert rows[0]["ratio_to_relu"] == 1.0 and rows[1]["ratio_to_relu"] > 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--impl", "eager", "--steps", "0"],
            "steps and warmup must be >= 1, got 128, 0, 3",
        ),
        (["--device", "tpu9"], "unknown device 'tpu9'"),
        (["--params", '{"model": {"impl": "fast"}}'], "unknown activation impl 'fast'"),
        (
            ["--params", '{"model": {"filters": {"small": [4]}}}'],
            "filters must be three positive integers",
        ),
        (["--params", '{"impl": "eager"}'], "unknown key(s) ['impl']; expected 'model'"),
    ],
)
def test_bench_cli_errors_name_the_bad_value(argv, message, capsys):
    assert main(["bench", "--sizes", "small", "--no-progress", *argv]) == 2
    assert message in capsys.readouterr().err


def test_bench_cli_table_then_pso_evaluators_side_by_side(capsys):
    """The text report: the throughput table, then PSO's vectorised and looped evaluation of
    the same swarm (tiny filters through --params, so it takes a second)."""
    tiny = json.dumps({"model": {"filters": {"small": [2, 4, 4]}, "hidden": 8}})
    argv = ["bench", "--sizes", "small", "--activations", "relu", "--batch-size", "4",
            "--steps", "2", "--warmup", "1", "--device", "cpu", "--impl", "eager",
            "--params", tiny, "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    table, pso = out.split("\n\n")
    assert "small   relu" in table
    assert pso.startswith("PSO fitness evaluation, small-relu CNN, 10 particles x 1000 images on cpu")
    assert "vectorised (vmap)" in pso and "looped" in pso and "speed-up" in pso

    assert main([*argv, "--no-pso"]) == 0
    assert "PSO" not in capsys.readouterr().out


# --------------------------------------------------------------------------- --profile

TINY = {"filters": {"small": [2, 4, 4]}, "hidden": 8}


def _conv_flops(c_in: int, c_out: int, side: int, images: int) -> int:
    """Forward FLOPs of a 3x3 'same' convolution: a multiply and an add per weight and output."""
    return 2 * c_in * c_out * 3 * 3 * side * side * images


def _linear_flops(n_in: int, n_out: int, images: int) -> int:
    return 2 * n_in * n_out * images


def test_step_profile_counts_flops_and_launches_by_hand():
    """FLOPs of the tiny network (filters 2/4/4, hidden 8) worked out from its layer shapes, and
    the ReLU network's launches listed op by op from the trainer's step
    (trainact.training.step.classifier_step)."""
    from trainact.bench.profile import step_profile

    n, m = 4, 10
    convs = [_conv_flops(3, 2, 32, 1), _conv_flops(2, 4, 16, 1), _conv_flops(4, 4, 8, 1)]
    linears = [_linear_flops(4 * 4 * 4, 8, 1), _linear_flops(8, 10, 1)]
    # Backward: grad_weight costs what the forward costs, and so does grad_input, except for the
    # first convolution, whose input (the images) needs no gradient.
    train = n * (2 * convs[0] + 3 * sum(convs[1:]) + 3 * sum(linears))
    evaluation = m * (sum(convs) + sum(linears))
    profiles = {
        a: step_profile("small", a, batch_size=n, eval_batch_size=m, model_cfg=TINY,
                        impl="eager", timing_steps=2)
        for a in ("relu", "fourier", "lc")
    }  # fmt: skip
    for p in profiles.values():
        assert (p.flops, p.eval_flops) == (train, evaluation)

    relu = profiles["relu"]
    assert relu.phase_launches == {
        "data": 4,  # index_select of images and labels, to float, / 255
        "forward": 14,  # 3 conv, 4 relu, 3 max-pool, 2 addmm, log_softmax, nll_loss
        # loss seed, nll and log_softmax backward, 2 x (2 mm + bias sum) for the dense layers,
        # 4 relu, 3 max-pool and 3 conv backward
        "backward": 19,
        "optimizer": 5,  # foreach mul_, addcmul_, sqrt, add_, addcdiv_ (step counters on the host)
        "bookkeeping": 7,  # double, * batch, +=; argmax, ==, sum, +=
    }
    assert relu.launches == relu.launches_eager == 49 and relu.kernel_calls == 0
    assert relu.optimizer_launches_loop == 5 * 10  # the same 5 ops per parameter tensor
    # evaluation: to float, / 255, the forward, log_softmax, nll_loss, double, +=, argmax, ==,
    # sum, += (the slices of the stored images are views)
    assert relu.eval_launches == 22
    for name in ("fourier", "lc"):
        p = profiles[name]
        assert p.kernel_calls == 8  # a forward and a backward call per activation layer (4)
        assert p.launches >= relu.launches  # the calls replace relu and its backward one for one
        assert p.launches_eager > p.launches + 8  # op by op, each kernel is many launches
        assert p.eval_launches_eager > p.eval_launches >= relu.eval_launches
        assert p.host_impl == "eager" and p.host_ms > 0
    assert profiles["fourier"].optimizer_launches_loop == 5 * (10 + 4 * 4)  # A, omega, a, b

    # The activation kernels' traffic: forward reads x and writes y, backward reads grad_y and x
    # and writes grad_x, 4 bytes each, over every activation input; plus the few parameters.
    elements = n * (2 * 32 * 32 + 4 * 16 * 16 + 4 * 8 * 8 + 8)
    assert relu.activation_bytes_moved == 0
    for name in ("fourier", "lc"):
        moved = profiles[name].activation_bytes_moved
        assert 5 * 4 * elements < moved < 5 * 4 * elements + 1000


def test_bench_cli_profile_table_and_json(capsys):
    argv = ["bench", "--profile", "--sizes", "small", "--activations", "relu", "lc",
            "--params", json.dumps({"model": TINY}), "--batch-size", "4", "--eval-batch-size", "10",
            "--impl", "eager", "--steps", "2", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("kernel launches and FLOPs per training step (batch 4)")
    assert "small   relu" in out and "small   lc" in out and "PSO" not in out

    assert main([*argv, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["activation"] for row in rows] == ["relu", "lc"]
    assert rows[0]["launches"] == 49 and rows[1]["kernel_calls"] == 8
    assert rows[0]["host_us_per_launch"] > 0

    assert main([*argv, "--json", "--steps", "0"]) == 0  # not timed
    assert json.loads(capsys.readouterr().out)[0]["host_ms"] is None

    assert main([*argv, "--eval-batch-size", "0"]) == 2
    assert "batch sizes must be >= 1" in capsys.readouterr().err


def test_pso_bench_cli_json(capsys):
    """`pso-bench` times PSO's two evaluators on the same swarm; its --params has the shape of
    `bench`'s, `{"model": {...}}`."""
    tiny = {"filters": {"middle": [4, 4, 4]}, "hidden": 8, "impl": "eager"}
    argv = ["pso-bench", "--particles", "3", "--batch-size", "16", "--chunk-size", "8", "--repeats", "2"]
    argv += ["--device", "cpu", "--json", "--no-progress", "--params", json.dumps({"model": tiny})]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["particles"] == 3 and result["batch_size"] == 16
    assert result["vectorised_images_per_s"] > 0 and result["looped_images_per_s"] > 0
    assert result["max_abs_loss_difference"] < 1e-4
