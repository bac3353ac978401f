"""Throughput bench: result structure, baseline ratio, CLI output (tiny, eager settings)."""

from __future__ import annotations

import json

import pytest

from trainact.bench import format_table, run_bench
from trainact.cli import main
from trainact.models import build_model, parameter_count

REQUIRED_KEYS = {"size", "activation", "images_per_s", "ratio_to_relu"}


def test_run_bench_measures_every_network_against_relu():
    results = run_bench(
        ["small"],
        ["fourier", "lc"],
        batch_size=4,
        steps=2,
        warmup=1,
        device="cpu",
        impl="eager",
        progress=False,
    )
    assert [(r.size, r.activation) for r in results] == [
        ("small", "relu"),
        ("small", "fourier"),
        ("small", "lc"),
    ]
    relu = results[0]
    assert relu.ratio_to_relu == 1.0
    for r in results:
        assert r.images_per_s == pytest.approx(4 / r.median_step_s)
        assert r.ratio_to_relu == pytest.approx(relu.median_step_s / r.median_step_s)
        assert r.parameters == parameter_count(build_model("small", r.activation, {}))
    table = format_table(results)
    assert table.splitlines()[0].split()[:4] == [
        "size",
        "activation",
        "params",
        "images/s",
    ]
    assert "small   fourier" in table


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
        (["--params", '{"impl": "fast"}'], "unknown activation impl 'fast'"),
        (
            ["--params", '{"filters": {"small": [4]}}'],
            "filters must be three positive integers",
        ),
    ],
)
def test_bench_cli_errors_name_the_bad_value(argv, message, capsys):
    assert main(["bench", "--sizes", "small", "--no-progress", *argv]) == 2
    assert message in capsys.readouterr().err


def test_bench_cli_table_then_pso_evaluators_side_by_side(capsys):
    """The text report: the throughput table, then PSO's vectorised and looped evaluation of
    the same swarm (tiny filters through --params, so it takes a second)."""
    tiny = json.dumps({"filters": {"small": [2, 4, 4]}, "hidden": 8})
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
