"""The schedule axis: its plan (trainact.training.schedules: trunk, branches, steps) and its judgement
(trainact.analysis.schedule_axis: paired differences per L, the line over the axis, the figure)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from trainact.analysis import schedule_axis
from trainact.analysis.results import train_history_path
from trainact.analysis.verdicts import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED
from trainact.names import PAPER_LEARNING_RATES, PAPER_LR_BOUNDARIES
from trainact.training import schedules

PAPER_TRAIN = {
    "epochs": 80, "batch_size": 128, "lr_boundaries": list(PAPER_LR_BOUNDARIES),
    "learning_rates": list(PAPER_LEARNING_RATES), "rho": 0.95, "eps": 1e-7, "eval_batch_size": 1000,
    "train_eval_images": 10000,
}  # fmt: skip
AXIS = {"first_phase_epochs": [5, 10, 15, 20], "tail_epochs": [4, 1]}


def test_a_branch_is_L_epochs_at_the_first_rate_then_the_tail():
    branch = schedules.branch_train(PAPER_TRAIN, AXIS, 5)
    assert (branch["epochs"], branch["lr_boundaries"], branch["learning_rates"]) == (
        10,
        [5, 9],
        [1e-3, 1e-4, 1e-5],
    )
    assert schedules.phases(branch) == [(1e-3, 5), (1e-4, 4), (1e-5, 1)]
    shared = set(PAPER_TRAIN) - set(schedules.SCHEDULE_KEYS)
    assert {k: branch[k] for k in shared} == {k: PAPER_TRAIN[k] for k in shared}


def test_the_trunk_holds_neither_the_tail_nor_the_list_of_points():
    """Editing the tail, or adding a point inside the trunk, leaves the trunk's settings (its
    rerun key) as they are; a longer trunk changes them."""
    trunk = schedules.trunk_train(PAPER_TRAIN, AXIS)
    assert schedules.phases(trunk) == [(1e-3, 20)]
    assert trunk["snapshot_epochs"] == list(range(1, 21))
    assert schedules.trunk_train(PAPER_TRAIN, {**AXIS, "tail_epochs": [10, 2]}) == trunk
    assert schedules.trunk_train(PAPER_TRAIN, {**AXIS, "first_phase_epochs": [5, 7, 10, 15, 20]}) == trunk
    assert schedules.trunk_train(PAPER_TRAIN, {**AXIS, "first_phase_epochs": [5, 25]}) != trunk


def test_a_point_that_is_the_main_schedule_reuses_the_main_runs():
    quick = {**PAPER_TRAIN, "epochs": 5, "lr_boundaries": [4, 5, 6]}
    axis = {"first_phase_epochs": [2, 4], "tail_epochs": [1]}
    assert schedules.is_main_schedule(quick, axis, 4)
    assert schedules.branch_points(quick, axis) == [2]
    assert schedules.trunk_train(quick, axis)["epochs"] == 2
    with pytest.raises(ValueError, match="no trunk"):
        schedules.trunk_train(quick, {"first_phase_epochs": [4], "tail_epochs": [1]})


@pytest.mark.parametrize(
    "axis, needle",
    [
        ({"first_phase_epochs": [10, 5], "tail_epochs": [1]}, "first_phase_epochs = [10, 5]"),
        ({"first_phase_epochs": [0], "tail_epochs": [1]}, "first_phase_epochs = [0]"),
        ({"first_phase_epochs": [5], "tail_epochs": [1, 1, 1, 1]}, "4 tail phases"),
    ],
)
def test_a_bad_axis_names_the_value(axis, needle):
    with pytest.raises(ValueError, match=needle.replace("[", r"\[")):
        schedules.branch_train(PAPER_TRAIN, axis, 5)


def test_schedule_text_gives_epochs_and_steps_per_learning_rate():
    branch = schedules.branch_train(PAPER_TRAIN, AXIS, 20)
    assert schedules.schedule_text(branch, 50_000) == (
        "20 ep @ 0.001 (7,820 steps), 4 ep @ 0.0001 (1,564), 1 ep @ 1e-05 (391)"
    )
    assert (
        schedules.schedule_text(PAPER_TRAIN) == "20 ep @ 0.001, 20 ep @ 0.0001, 20 ep @ 1e-05, 20 ep @ 1e-06"
    )


# ------------------------------------------------------------------------- the judgement


def _point(L, outcome):
    return {"first_phase": L, "claims": [{"number": 1, "outcome": outcome}]}


@pytest.mark.parametrize(
    "outcomes, line",
    [
        ([SUPPORTED] * 3, "consistent at every L (5, 10, 15)"),
        ([SUPPORTED, SUPPORTED, INCONCLUSIVE, NOT_SUPPORTED, NOT_SUPPORTED],
         "depends on the schedule: consistent for L <= 10, inconclusive at L = 15, inconsistent for L >= 20"),
        ([INCONCLUSIVE, NOT_SUPPORTED, INCONCLUSIVE],
         "inconclusive at L = 5, inconsistent at L = 10, inconclusive at L = 15"),
    ],
)  # fmt: skip
def test_the_line_over_the_axis_says_where_a_claim_holds(outcomes, line):
    points = [_point(L, o) for L, o in zip((5, 10, 15, 20, 25), outcomes)]
    assert schedule_axis.axis_line(points, 1) == line


def _history(final_val, best_val, train_eval, epochs):
    """A history whose val_acc peaks at best_val at epoch 2 and ends at final_val; eval-mode
    training accuracy rises linearly to train_eval."""
    rows = []
    for epoch in range(1, epochs + 1):
        val = best_val if epoch == 2 else final_val if epoch == epochs else min(final_val, best_val) - 0.01
        rows.append({
            "epoch": epoch, "lr": 1e-3, "train_loss": 1.0, "train_acc": 0.5, "val_loss": 1.0, "val_acc": val,
            "train_eval_loss": 1.0, "train_eval_acc": train_eval * epoch / epochs, "seconds": 1.0,
            "images_per_s": 1.0, "status": "ok",
        })  # fmt: skip
    return pd.DataFrame(rows)


def write_runs(root, accs, epochs, seeds=(0, 1, 2)):
    for activation, (final, best, fit) in accs.items():
        for seed in seeds:
            path = train_history_path(root, "small", activation, seed)
            path.parent.mkdir(parents=True, exist_ok=True)
            _history(final + 0.002 * seed * (activation == "fourier"), best, fit, epochs).to_csv(
                path, index=False
            )
            summary = {
                "train_images": 50000,
                "steps_by_learning_rate": [{"lr": 1e-3, "epochs": epochs, "steps": 391 * epochs}],
            }
            path.with_name("summary.json").write_text(json.dumps(summary))


def test_the_axis_judges_the_final_epoch_and_shows_the_best_beside_it(tmp_path):
    """At L = 5 the trainable CNNs end 5 pp above ReLU; at L = 10 they end 3 pp below it while
    their best epoch is higher than ReLU's: the verdict follows the final epoch, and the line
    says the claim depends on the schedule."""
    roots = {5: tmp_path / "L5", 10: tmp_path / "L10"}
    write_runs(
        roots[5], {"relu": (0.60, 0.60, 0.6), "fourier": (0.65, 0.65, 0.7), "lc": (0.65, 0.65, 0.7)}, 10
    )
    write_runs(
        roots[10], {"relu": (0.70, 0.70, 0.8), "fourier": (0.67, 0.75, 0.9), "lc": (0.67, 0.75, 0.9)}, 15
    )
    write_runs(
        tmp_path / "main",
        {"relu": (0.70, 0.70, 0.8), "fourier": (0.68, 0.68, 0.9), "lc": (0.68, 0.68, 0.9)},
        25,
    )
    params = {
        "sizes": ["small"], "activations": ["relu", "fourier", "lc"], "seeds": [0, 1, 2],
        "points": [{"first_phase": L, "root": str(r), "train": schedules.branch_train(PAPER_TRAIN, AXIS, L)}
                   for L, r in roots.items()],
        "reference": {"root": str(tmp_path / "main"), "train": {**PAPER_TRAIN, "epochs": 25}},
        "settings": {},
    }  # fmt: skip
    result = schedule_axis.schedule_axis(params)
    L5, L10 = result["points"]
    final = {
        (p["first_phase"], d["activation"]): d
        for p in result["points"]
        for d in p["differences"]
        if d["endpoint"] == "final"
    }
    best = {
        (p["first_phase"], d["activation"]): d
        for p in result["points"]
        for d in p["differences"]
        if d["endpoint"] == "best"
    }
    assert final[(5, "lc")]["mean"] == pytest.approx(5.0) and final[(10, "lc")]["mean"] == pytest.approx(-3.0)
    assert best[(10, "lc")]["mean"] == pytest.approx(5.0)
    assert final[(5, "fourier")]["low"] < final[(5, "fourier")]["mean"] < final[(5, "fourier")]["high"]
    assert [c["outcome"] for c in L5["claims"] if c["number"] == 1] == [SUPPORTED]
    assert [c["outcome"] for c in L10["claims"] if c["number"] == 1] == [NOT_SUPPORTED]
    assert result["claim_lines"]["1"].startswith("depends on the schedule: consistent")
    # eval-mode training accuracy at the drop (epoch L) and at the end
    relu5 = [r for r in L5["train_eval"] if r["activation"] == "relu"][0]
    assert relu5["at_drop"] == pytest.approx(0.6 * 5 / 10) and relu5["final"] == pytest.approx(0.6)
    assert L5["schedule"] == "5 ep @ 0.001 (1,955 steps), 4 ep @ 0.0001 (1,564), 1 ep @ 1e-05 (391)"
    assert result["reference"]["reference"] and result["reference"]["first_phase"] == 20
    assert result["context"] == (
        "steps at 0.001: 1,955 (L = 5), 3,910 (L = 10); "
        "ReLU CNN's eval-mode training accuracy at the drop: 0.300 (L = 5), 0.533 (L = 10)"
    )
    rows = schedule_axis.csv_rows(result)
    assert len(rows) == 3 * 2 * 2  # (2 points + reference) x 2 activations x 2 endpoints


def test_one_seed_gives_no_interval(tmp_path):
    write_runs(
        tmp_path / "L5",
        {"relu": (0.6, 0.6, 0.6), "fourier": (0.65, 0.65, 0.7), "lc": (0.65, 0.65, 0.7)},
        10,
        seeds=(0,),
    )
    params = {
        "sizes": ["small"], "activations": ["relu", "fourier", "lc"], "seeds": [0],
        "points": [{"first_phase": 5, "root": str(tmp_path / "L5"),
                    "train": schedules.branch_train(PAPER_TRAIN, AXIS, 5)}],
        "reference": {"root": str(tmp_path / "L5"), "train": schedules.branch_train(PAPER_TRAIN, AXIS, 5)},
        "settings": {},
    }  # fmt: skip
    result = schedule_axis.schedule_axis(params)
    for d in result["points"][0]["differences"]:
        assert d["n"] == 1 and d["low"] is None and d["high"] is None


def test_without_points_the_axis_is_not_run(tmp_path):
    assert schedule_axis.schedule_axis({"points": []})["status"] == "not run"


def test_a_claim_that_depends_on_the_schedule_never_reads_as_a_plain_verdict():
    from trainact.report.claims_context import with_axis_lines

    rows = [
        {"number": 1, "verdict": "supported"},
        {"number": 2, "verdict": "not supported"},
        {"number": 3, "verdict": "x"},
    ]
    lines = {
        1: "depends on the schedule: consistent for L <= 5, inconsistent for L >= 15",
        2: "inconsistent at every L (5, 10)",
    }
    shown = with_axis_lines(rows, lines)
    assert shown[0]["verdict"] == "depends on the schedule (at this run's schedule: supported)"
    assert shown[0]["axis"] == lines[1]
    assert shown[1]["verdict"] == "not supported" and shown[1]["axis"] == lines[2]
    assert shown[2]["axis"] == "–"
