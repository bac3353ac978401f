"""Aggregation: best over epochs, mean/std over seeds, Table 2 in points, diverged epochs, CLI."""

from __future__ import annotations

import json
import math
import statistics

import pandas as pd
import pytest
from fixtures_results import ACC_PEAK, LOSS_PEAK, build_results, history_frame, paper_like_bests, write_csv

from trainact import aggregate as agg
from trainact.cli import main

SEEDS = (0, 1, 2)


def strict_json(path):
    """Parse JSON that must not contain NaN/Infinity (invalid in strict JSON)."""

    def reject(token):
        raise ValueError(f"{path}: non-standard JSON constant {token}")

    return json.loads(path.read_text(), parse_constant=reject)


def test_best_is_taken_per_metric_over_ok_epochs_only(tmp_path):
    history = pd.DataFrame(
        [
            {"epoch": 1, "train_acc": 0.50, "train_loss": 1.40, "val_acc": 0.45, "val_loss": 1.50, "status": "ok"},
            {"epoch": 2, "train_acc": 0.60, "train_loss": 1.10, "val_acc": 0.55, "val_loss": 1.20, "status": "ok"},
            {"epoch": 3, "train_acc": 0.70, "train_loss": 0.90, "val_acc": 0.58, "val_loss": 1.25, "status": "ok"},
            {"epoch": 4, "train_acc": 0.75, "train_loss": 0.95, "val_acc": 0.57, "val_loss": 1.30, "status": "ok"},
            # a row that is not "ok" but has better numbers: must be ignored
            {
                "epoch": 5,
                "train_acc": 0.99,
                "train_loss": 0.01,
                "val_acc": 0.99,
                "val_loss": 0.01,
                "status": "diverged",
            },
        ]
    )
    path = write_csv(tmp_path / "history.csv", history)
    best = agg.best_of_history(agg.read_history(path))
    assert best["best_train_acc"] == 0.75  # epoch 4
    assert best["best_train_loss"] == 0.90  # epoch 3
    assert best["best_val_acc"] == 0.58  # epoch 3
    assert best["best_val_loss"] == 1.20  # epoch 2
    assert best["best_val_acc_epoch"] == 3
    assert best["final_val_acc"] == 0.57 and best["first_val_acc"] == 0.45
    assert (best["epochs_ok"], best["epochs_ignored"], best["diverged_epoch"]) == (4, 1, 5)


def test_fixture_history_has_its_requested_bests_at_different_epochs():
    bests = {"train_acc": 0.7, "val_acc": 0.6, "train_loss": 0.9, "val_loss": 1.1}
    frame = history_frame(bests)
    best = agg.best_of_history(frame)
    assert best["best_val_acc"] == pytest.approx(0.6) and best["best_val_loss"] == pytest.approx(1.1)
    assert frame.loc[frame["val_acc"].idxmax(), "epoch"] == ACC_PEAK
    assert frame.loc[frame["val_loss"].idxmin(), "epoch"] == LOSS_PEAK


def test_table1_mean_and_std_over_seeds(tmp_path):
    val_acc = {0: 0.50, 1: 0.52, 2: 0.57}

    def bests(size, activation, seed):
        return {
            "train_acc": 0.8 + 0.01 * seed,
            "val_acc": val_acc[seed],
            "train_loss": 0.5,
            "val_loss": 1.0 + 0.1 * seed,
        }

    results = build_results(tmp_path / "out", sizes=["small"], activations=["relu"], seeds=SEEDS, bests=bests)
    summary = agg.aggregate(results, tmp_path / "tables", ["small"], ["relu"], SEEDS)
    table = pd.read_csv(tmp_path / "tables" / "table1.csv")
    assert len(table) == 1
    row = table.iloc[0]
    assert row["model"] == "Small CNN" and row["n_seeds"] == 3 and row["n_diverged"] == 0
    assert row["val_acc_mean"] == pytest.approx(0.53)
    assert row["val_acc_std"] == pytest.approx(math.sqrt((0.03**2 + 0.01**2 + 0.04**2) / 2))
    assert row["train_acc_mean"] == pytest.approx(0.81) and row["train_acc_std"] == pytest.approx(0.01)
    assert row["val_loss_mean"] == pytest.approx(1.1) and row["val_loss_std"] == pytest.approx(0.1)
    assert row["val_acc_published"] == 0.5914
    assert row["val_acc_diff"] == pytest.approx(0.53 - 0.5914)
    assert row["train_loss_published"] == 2.752
    assert summary["table1"][0]["val_acc_mean"] == pytest.approx(0.53)


def test_one_seed_has_no_std_and_strict_json(tmp_path):
    results = build_results(tmp_path / "out", sizes=["small"], seeds=[0])
    agg.aggregate(results, tmp_path / "tables", ["small"], list(agg.ACTIVATIONS), [0])
    rows = strict_json(tmp_path / "tables" / "table1.json")["rows"]
    assert [r["n_seeds"] for r in rows] == [1, 1, 1]
    assert all(r["val_acc_std"] is None for r in rows)
    summary = strict_json(tmp_path / "tables" / "summary.json")
    assert summary["table2"][0]["std_pp"] is None and summary["table2"][0]["n_pairs"] == 1


def test_table2_is_paired_difference_in_percentage_points(tmp_path):
    val = {
        ("relu", 0): 0.60,
        ("relu", 1): 0.62,
        ("fourier", 0): 0.65,
        ("fourier", 1): 0.66,
        ("lc", 0): 0.59,
        ("lc", 1): 0.63,
    }
    train = {
        ("relu", 0): 0.80,
        ("relu", 1): 0.80,
        ("fourier", 0): 0.78,
        ("fourier", 1): 0.79,
        ("lc", 0): 0.81,
        ("lc", 1): 0.83,
    }

    def bests(size, activation, seed):
        return {
            "val_acc": val[(activation, seed)],
            "train_acc": train[(activation, seed)],
            "train_loss": 0.5,
            "val_loss": 1.0,
        }

    results = build_results(tmp_path / "out", sizes=["middle"], seeds=[0, 1], bests=bests)
    agg.aggregate(results, tmp_path / "tables", ["middle"], list(agg.ACTIVATIONS), [0, 1])
    table = pd.read_csv(tmp_path / "tables" / "table2.csv").set_index(["size", "split", "activation"])
    assert list(table.index) == [
        ("middle", "val", "fourier"),
        ("middle", "val", "lc"),
        ("middle", "train", "fourier"),
        ("middle", "train", "lc"),
    ]
    expected = {
        ("val", "fourier"): [5.0, 4.0],
        ("val", "lc"): [-1.0, 1.0],
        ("train", "fourier"): [-2.0, -1.0],
        ("train", "lc"): [1.0, 3.0],
    }
    published = {("val", "fourier"): 3.70, ("val", "lc"): 1.64, ("train", "fourier"): -4.89, ("train", "lc"): -1.24}
    for (split, activation), diffs in expected.items():
        row = table.loc[("middle", split, activation)]
        assert row["n_pairs"] == 2
        assert row["mean_pp"] == pytest.approx(statistics.mean(diffs))
        assert row["std_pp"] == pytest.approx(statistics.stdev(diffs))
        assert row["published_pp"] == published[(split, activation)]
        assert row["diff_pp"] == pytest.approx(statistics.mean(diffs) - published[(split, activation)])


def test_diverged_runs_are_counted_and_their_bad_epochs_ignored(tmp_path):
    # seed 1 of small LC diverges at epoch 3: only epochs 1-2 count (2 and 1 epochs from the peak)
    results = build_results(tmp_path / "out", sizes=["small"], seeds=SEEDS, diverge={("small", "lc", 1): 3})
    summary = agg.aggregate(results, tmp_path / "tables", ["small"], list(agg.ACTIVATIONS), SEEDS)
    assert summary["diverged"] == [
        {"run": "train/small-lc/seed1", "diverged_epoch": 3, "epochs_ok": 2, "epochs_ignored": 1}
    ]
    runs = pd.read_csv(tmp_path / "tables" / "runs.csv").set_index(["activation", "seed"])
    expected_best = paper_like_bests("small", "lc", 1)["val_acc"] - 0.01 * (ACC_PEAK - 2)
    assert runs.loc[("lc", 1), "best_val_acc"] == pytest.approx(expected_best)
    assert runs.loc[("lc", 1), "diverged_epoch"] == 3
    table1 = pd.read_csv(tmp_path / "tables" / "table1.csv").set_index("activation")
    assert table1.loc["lc", "n_diverged"] == 1 and table1.loc["relu", "n_diverged"] == 0


def test_run_without_ok_epoch_is_left_out_of_the_pairs(tmp_path):
    results = build_results(tmp_path / "out", sizes=["small"], seeds=SEEDS, diverge={("small", "fourier", 2): 1})
    summary = agg.aggregate(results, tmp_path / "tables", ["small"], list(agg.ACTIVATIONS), SEEDS)
    pairs = {(r["split"], r["activation"]): r["n_pairs"] for r in summary["table2"]}
    assert pairs[("val", "fourier")] == 2 and pairs[("val", "lc")] == 3
    fourier = next(r for r in summary["table1"] if r["activation"] == "fourier")
    assert fourier["n_seeds"] == 3 and fourier["n_diverged"] == 1


def test_autoencoder_and_pso_summaries(tmp_path):
    results = build_results(tmp_path / "out", sizes=["middle"], seeds=[0, 1], autoencoder_seeds=[0, 1], pso_seeds=[1])
    summary = agg.aggregate(results, tmp_path / "tables", ["middle"], list(agg.ACTIVATIONS), [0, 1], [0, 1], [1])
    ae = summary["autoencoder"]
    assert ae["status"] == "ok" and ae["seeds"] == [0, 1]
    for row in ae["per_seed"]:
        baseline = paper_like_bests("middle", "fourier", row["seed"])["val_acc"]
        assert row["baseline_best_val_acc"] == pytest.approx(baseline)
        assert row["pretrained_best_val_acc"] == pytest.approx(baseline + 0.02)
        assert row["diff_best_val_acc_pp"] == pytest.approx(2.0)
    assert ae["diff_best_val_acc_pp"]["mean"] == pytest.approx(2.0) and ae["diff_best_val_acc_pp"]["n"] == 2
    assert {(s["seed"], s["stage"]) for s in ae["pretrain_stages"]} == {(s, k) for s in (0, 1) for k in range(3)}
    stage0 = next(s for s in ae["pretrain_stages"] if s["stage"] == 0 and s["seed"] == 0)
    assert stage0["first_loss"] == pytest.approx(0.15) and stage0["final_loss"] == pytest.approx(0.1 + 0.05 / 3)
    pso = summary["pso"]
    (row,) = pso["per_seed"]
    reference = paper_like_bests("middle", "relu", 1)["val_acc"]
    assert row["rmsprop_best_val_acc"] == pytest.approx(reference)
    assert row["pso_best_test_acc"] == pytest.approx(0.5 * reference)
    assert row["ratio"] == pytest.approx(0.5) and row["generations"] == 5


def test_section5_experiments_not_run_without_seeds(tmp_path):
    results = build_results(tmp_path / "out", sizes=["small"], seeds=[0])
    summary = agg.aggregate(results, tmp_path / "tables", ["small"], ["relu"], [0])
    assert summary["autoencoder"] == {"status": "not run", "seeds": []}
    assert summary["pso"] == {"status": "not run", "seeds": []}
    assert summary["table2"] == []  # no trainable activation to compare


def test_published_table2_is_the_difference_of_published_table1():
    published = agg.load_published()
    table1 = {(r["size"], r["activation"]): r for r in published["table1"]}
    assert len(table1) == 9 and len(published["table2"]) == 12
    for row in published["table2"]:
        key = f"{row['split']}_acc"
        difference = 100 * (table1[(row["size"], row["activation"])][key] - table1[(row["size"], "relu")][key])
        assert row["improvement_pp"] == pytest.approx(difference, abs=5e-3)


def test_cli_writes_every_table(tmp_path):
    results = build_results(tmp_path / "out", sizes=["small", "middle"], seeds=[0, 1], pso_seeds=[0])
    out = tmp_path / "out" / "tables"
    argv = [
        "aggregate",
        "--results",
        str(results),
        "--out-dir",
        str(out),
        "--sizes",
        "middle",
        "small",
        "--activations",
        "relu",
        "fourier",
        "lc",
        "--seeds",
        "0",
        "1",
        "--pso-seeds",
        "0",
    ]
    assert main(argv) == 0
    for name in ("table1.csv", "table1.json", "table2.csv", "table2.json", "runs.csv", "summary.json"):
        assert (out / name).is_file(), name
    models = list(pd.read_csv(out / "table1.csv")["model"])
    # the paper's order, whatever order the command line gives
    assert models == [
        "Small CNN",
        "Small Fourier-CNN",
        "Small LC-CNN",
        "Middle CNN",
        "Middle Fourier-CNN",
        "Middle LC-CNN",
    ]
    summary = strict_json(out / "summary.json")
    assert summary["pso"]["status"] == "ok" and summary["autoencoder"]["status"] == "not run"


def test_pso_needs_its_reference_run(tmp_path):
    results = build_results(tmp_path / "out", sizes=["small"], seeds=[0], pso_seeds=[0])
    with pytest.raises(FileNotFoundError, match="middle-relu"):
        agg.aggregate(results, tmp_path / "tables", ["small"], ["relu"], [0], pso_seeds=[0])


def test_cli_names_a_missing_history(tmp_path, capsys):
    results = build_results(tmp_path / "out", sizes=["small"], seeds=[0])
    argv = [
        "aggregate",
        "--results",
        str(results),
        "--out-dir",
        str(tmp_path / "t"),
        "--sizes",
        "small",
        "--seeds",
        "0",
        "1",
    ]
    assert main(argv) == 2
    message = capsys.readouterr().err
    assert str(agg.train_history_path(results, "small", "relu", 1)) in message


def test_cli_rejects_an_unknown_size(tmp_path, capsys):
    argv = [
        "aggregate",
        "--results",
        str(tmp_path),
        "--out-dir",
        str(tmp_path / "t"),
        "--sizes",
        "huge",
        "--seeds",
        "0",
    ]
    assert main(argv) == 2
    assert "huge" in capsys.readouterr().err


def test_history_without_required_column_is_named(tmp_path):
    path = write_csv(tmp_path / "history.csv", pd.DataFrame([{"epoch": 1, "val_acc": 0.5, "status": "ok"}]))
    with pytest.raises(ValueError, match="train_loss"):
        agg.read_history(path)
