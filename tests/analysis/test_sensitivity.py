"""Sensitivity study: per-variant Table 2 with intervals, claim verdicts, outcome, files, errors."""

from __future__ import annotations

import json
import math
import re

import pandas as pd
import pytest
from fixtures_results import build_results, table_bests

from trainact.analysis import preview as pv
from trainact.analysis import sensitivity as sn
from trainact.analysis.results import train_history_path
from trainact.cli import main

SEEDS = (0, 1, 2)
HALF = 4.302653 / math.sqrt(3)  # t(0.975, 2) / sqrt(3): the half width per unit of sample std
PAPER_SETTINGS = {
    "dataset": {"train_per_class": None, "synthetic": None},
    "train": {"epochs": 80, "lr_boundaries": [20, 40, 60], "learning_rates": [1e-3, 1e-4, 1e-5, 1e-6]},
}
QUICK_SETTINGS = {
    "dataset": {"train_per_class": 300, "synthetic": None},
    "train": {"epochs": 8, "lr_boundaries": [2, 4, 6], "learning_rates": [1e-3, 1e-4, 1e-5, 1e-6]},
}
RELU = (0.50, 0.60)  # best val acc, best train acc of the small ReLU CNN, every seed


def accuracies(activation, val_pp, train_pp):
    """{(small, activation, seed): (val, train)}: ReLU's accuracies plus the given points per seed."""
    return {
        ("small", activation, seed): (RELU[0] + v / 100, RELU[1] + t / 100)
        for seed, v, t in zip(SEEDS, val_pp, train_pp)
    }


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    """Three results folders: the reference (all three models), and two with other Fourier/LC runs.

    reference: Fourier - ReLU = 1, 2, 3 pp (val), 2, 4, 6 (train); LC - ReLU = 4, 5, 6 (val), 1, 1, 1 (train)
    fixed:     Fourier - ReLU = 5, 6, 7 pp (val and train);         LC - ReLU = 2, 3, 4 (val and train)
    flipped:   Fourier - ReLU = -1, -2, -3 pp (val and train);      LC as the reference
    """
    base = tmp_path_factory.mktemp("sensitivity")
    reference = {
        **{("small", "relu", s): RELU for s in SEEDS},
        **accuracies("fourier", (1, 2, 3), (2, 4, 6)),
        **accuracies("lc", (4, 5, 6), (1, 1, 1)),
    }
    fixed = {**accuracies("fourier", (5, 6, 7), (5, 6, 7)), **accuracies("lc", (2, 3, 4), (2, 3, 4))}
    flipped = {**accuracies("fourier", (-1, -2, -3), (-1, -2, -3)), **accuracies("lc", (4, 5, 6), (1, 1, 1))}
    out = {}
    for name, values, activations in (
        ("reference", reference, ["relu", "fourier", "lc"]),
        ("fixed", fixed, ["fourier", "lc"]),
        ("flipped", flipped, ["fourier", "lc"]),
    ):
        out[name] = str(
            build_results(base / name, sizes=["small"], activations=activations, bests=table_bests(values))
        )
    return out


def variant(name, roots, other=None, initialisation="calibrated", preprocessing="none"):
    trainable = roots[other] if other else roots["reference"]
    return {
        "name": name,
        "initialisation": initialisation,
        "preprocessing": preprocessing,
        "roots": {"relu": roots["reference"], "fourier": trainable, "lc": trainable},
    }


def params(variants, seeds=SEEDS, settings=PAPER_SETTINGS, **extra):
    return {
        "sizes": ["small"],
        "activations": ["relu", "fourier", "lc"],
        "seeds": list(seeds),
        "reference": variants[0]["name"] if variants else None,
        "settings": settings,
        "variants": variants,
        **extra,
    }


def row(result, name, split, activation):
    (variant,) = [v for v in result["variants"] if v["name"] == name]
    (found,) = [r for r in variant["table2"] if (r["split"], r["activation"]) == (split, activation)]
    return found


def test_table2_intervals_and_verdicts_per_variant(roots, tmp_path):
    variants = [
        variant("calibrated+none", roots),
        variant("fixed+none", roots, "fixed", initialisation="fixed"),
    ]
    result = sn.sensitivity(params(variants), tmp_path)
    assert (
        result["status"] == "ok" and result["preview"] is False and result["reference"] == "calibrated+none"
    )
    # reference, validation, Fourier: 1, 2, 3 pp -> mean 2, std 1, 2 ± 4.303/sqrt(3)
    r = row(result, "calibrated+none", "val", "fourier")
    assert r["n_pairs"] == 3 and r["mean_pp"] == pytest.approx(2.0) and r["std_pp"] == pytest.approx(1.0)
    assert (r["ci_low_pp"], r["ci_high_pp"]) == pytest.approx((2 - HALF, 2 + HALF))
    # training, Fourier: 2, 4, 6 -> mean 4, std 2, 4 ± 2 * 4.303/sqrt(3); training LC: 1, 1, 1 -> [1, 1]
    r = row(result, "calibrated+none", "train", "fourier")
    assert (r["mean_pp"], r["std_pp"], r["ci_low_pp"]) == pytest.approx((4.0, 2.0, 4 - 2 * HALF))
    r = row(result, "calibrated+none", "train", "lc")
    assert (r["mean_pp"], r["ci_low_pp"], r["ci_high_pp"]) == pytest.approx((1.0, 1.0, 1.0), abs=1e-9)
    # fixed, validation: Fourier 5, 6, 7 -> 6 ± HALF; LC 2, 3, 4 -> 3 ± HALF
    r = row(result, "fixed+none", "val", "fourier")
    assert (r["mean_pp"], r["ci_low_pp"], r["ci_high_pp"]) == pytest.approx((6.0, 6 - HALF, 6 + HALF))
    r = row(result, "fixed+none", "val", "lc")
    assert (r["mean_pp"], r["ci_low_pp"]) == pytest.approx((3.0, 3 - HALF))
    best = {(b["activation"]): b["mean_best_val_acc"] for b in result["variants"][0]["best_val_acc"]}
    assert best == pytest.approx({"relu": 0.50, "fourier": 0.52, "lc": 0.55})
    best = {(b["activation"]): b["mean_best_val_acc"] for b in result["variants"][1]["best_val_acc"]}
    assert best == pytest.approx({"relu": 0.50, "fourier": 0.56, "lc": 0.53})
    # reference: Fourier's interval [-0.48, 4.48] straddles 0 -> claim 1 inconclusive; claim 2: Fourier
    # is 3 pp below LC on every seed -> not supported. fixed: every interval above 0 -> both supported.
    verdicts = {v["name"]: [c["verdict"] for c in v["claims"]] for v in result["variants"]}
    assert verdicts == {
        "calibrated+none": [
            "inconclusive under the seed spread (small networks only)",
            "not supported (small networks only)",
        ],
        "fixed+none": ["supported (small networks only)", "supported (small networks only)"],
    }
    assert [c["number"] for c in result["variants"][0]["claims"]] == [1, 2]
    assert result["variants"][0]["reference"] is True and result["variants"][1]["reference"] is False


def test_outcome_says_depends_when_a_verdict_differs(roots, tmp_path):
    variants = [
        variant("calibrated+none", roots),
        variant("fixed+none", roots, "fixed", initialisation="fixed"),
    ]
    outcome = sn.sensitivity(params(variants), tmp_path)["outcome"]
    assert outcome["depends"] is True and outcome["sign_changes"] is False
    claim1, claim2 = outcome["claims"]
    assert claim1["depends"] and claim2["depends"]
    assert claim1["statement"] == (
        "The verdict of claim 1 depends on these choices: "
        "calibrated+none → inconclusive under the seed spread (small networks only), "
        "fixed+none → supported (small networks only)."
    )
    assert outcome["statement"] == (
        "The verdict of claims 1 and 2 depends on the unstated choices "
        "(initialisation, preprocessing; 2 variants)."
    )
    assert [s["signs"] for s in outcome["signs"]] == [{"calibrated+none": "+", "fixed+none": "+"}] * 2


def test_outcome_says_same_and_reports_a_sign_change(roots, tmp_path):
    # flipped: Fourier - ReLU = -1, -2, -3 -> [-4.48, 0.48], still inconclusive; claim 2 still not supported
    variants = [
        variant("calibrated+none", roots),
        variant("calibrated+zca", roots, "flipped", preprocessing="zca"),
    ]
    outcome = sn.sensitivity(params(variants), tmp_path)["outcome"]
    assert outcome["depends"] is False
    assert [c["statement"] for c in outcome["claims"]] == [
        "The verdict of claim 1 is the same under every variant: "
        "inconclusive under the seed spread (small networks only).",
        "The verdict of claim 2 is the same under every variant: not supported (small networks only).",
    ]
    assert outcome["statement"] == (
        "No verdict of claims 1 and 2 depends on the unstated choices "
        "(initialisation, preprocessing; 2 variants). "
        "The sign of the mean validation difference over the ReLU CNN changes for Fourier-CNN (small)."
    )
    fourier, lc = outcome["signs"]
    assert fourier["changes"] and fourier["signs"] == {"calibrated+none": "+", "calibrated+zca": "−"}
    assert fourier["statement"] == (
        "The sign of the mean validation difference Fourier-CNN − CNN (small) changes across variants: "
        "calibrated+none +, calibrated+zca −."
    )
    assert not lc["changes"] and lc["statement"].endswith("is the same under every variant: +.")


def test_files_written(roots, tmp_path):
    variants = [
        variant("calibrated+none", roots),
        variant("fixed+none", roots, "fixed", initialisation="fixed"),
    ]
    result = sn.sensitivity(params(variants), tmp_path)
    assert json.loads((tmp_path / "sensitivity.json").read_text()) == result
    table = pd.read_csv(tmp_path / "sensitivity.csv")
    assert list(table.columns) == list(sn.CSV_COLUMNS)
    assert len(table) == 8  # 2 variants x 2 splits x 2 trainable activations
    fixed_val_lc = table.query("variant == 'fixed+none' and split == 'val' and activation == 'lc'").iloc[0]
    assert fixed_val_lc["initialisation"] == "fixed" and fixed_val_lc["size"] == "small"
    assert (fixed_val_lc["mean_pp"], fixed_val_lc["std_pp"], fixed_val_lc["ci_high_pp"]) == pytest.approx(
        (3.0, 1.0, 3 + HALF)
    )


def test_one_seed_and_a_short_schedule_give_previews(roots, tmp_path):
    variants = [
        variant("calibrated+none", roots),
        variant("fixed+none", roots, "fixed", initialisation="fixed"),
    ]
    result = sn.sensitivity(params(variants, seeds=[2], settings=QUICK_SETTINGS), tmp_path)
    assert result["preview"] is True and result["preview_reasons"] == pv.preview_reasons(QUICK_SETTINGS, 1)
    assert result["preview_reasons"][0] == "1 seed (< 3)" and len(result["preview_reasons"]) == 3
    # seed 2 only: no interval, only directions: reference Fourier +3 pp, LC +6, Fourier - LC = -3;
    # fixed: Fourier +7, LC +4, Fourier - LC = +3: all above 0
    r = row(result, "calibrated+none", "val", "fourier")
    assert (r["n_pairs"], r["mean_pp"]) == pytest.approx((1, 3.0))
    assert (
        r["std_pp"] is None and r["ci_low_pp"] is None and r["ci_high_pp"] is None
    )  # JSON null: never measured
    assert "ci_low_pp" in (tmp_path / "sensitivity.csv").read_text()
    verdicts = {v["name"]: [c["verdict"] for c in v["claims"]] for v in result["variants"]}
    assert verdicts == {
        "calibrated+none": [
            "preview: consistent with the claim (small networks only)",
            "preview: inconsistent with the claim (small networks only)",
        ],
        "fixed+none": [
            "preview: consistent with the claim (small networks only)",
            "preview: consistent with the claim (small networks only)",
        ],
    }
    assert result["variants"][1]["claims"][0]["preview_reasons"] == pv.preview_reasons(QUICK_SETTINGS, 1)
    assert (
        result["outcome"]["claims"][0]["depends"] is False
        and result["outcome"]["claims"][1]["depends"] is True
    )


def test_no_variants_is_not_run(tmp_path):
    for given in ({}, {"variants": []}):
        result = sn.sensitivity(given, tmp_path)
        assert result["status"] == "not run" and result["variants"] == []
        assert json.loads((tmp_path / "sensitivity.json").read_text())["status"] == "not run"
        assert (tmp_path / "sensitivity.csv").read_text().strip() == ",".join(sn.CSV_COLUMNS)


def test_errors_name_the_bad_value(roots, tmp_path):
    good = [variant("calibrated+none", roots), variant("fixed+none", roots, "fixed")]
    with pytest.raises(ValueError, match="gelu"):
        sn.sensitivity({**params(good), "activations": ["relu", "gelu"]}, tmp_path)
    with pytest.raises(ValueError, match="huge"):
        sn.sensitivity({**params(good), "sizes": ["huge"]}, tmp_path)
    with pytest.raises(ValueError, match="'relu'"):
        sn.sensitivity({**params(good), "activations": ["fourier", "lc"]}, tmp_path)
    with pytest.raises(ValueError, match="'nope'"):
        sn.sensitivity({**params(good), "reference": "nope"}, tmp_path)
    with pytest.raises(ValueError, match=r"\['extra'\]"):
        sn.sensitivity({**params(good), "extra": 1}, tmp_path)
    lacking = {**good[1], "roots": {"relu": roots["reference"], "fourier": roots["fixed"]}}
    with pytest.raises(ValueError, match=r"'fixed\+none'.*lacks \['lc'\]"):
        sn.sensitivity(params([good[0], lacking]), tmp_path)
    with pytest.raises(ValueError, match=r"\['calibrated\+none'\] given more than once"):
        sn.sensitivity(params([good[0], good[0]]), tmp_path)
    with pytest.raises(ValueError, match="seeds"):
        sn.sensitivity(params(good, seeds=[]), tmp_path)
    empty = {**good[1], "roots": {**good[1]["roots"], "lc": str(tmp_path / "empty")}}
    missing = train_history_path(tmp_path / "empty", "small", "lc", 0)
    with pytest.raises(
        FileNotFoundError, match=r"'fixed\+none': expected file is missing: " + re.escape(str(missing))
    ):
        sn.sensitivity(params([good[0], empty]), tmp_path)


def test_cli(roots, tmp_path, capsys):
    variants = [
        variant("calibrated+none", roots),
        variant("fixed+none", roots, "fixed", initialisation="fixed"),
    ]
    argv = ["sensitivity", "--params", json.dumps(params(variants)), "--out-dir", str(tmp_path / "out")]
    assert main(argv) == 0
    document = json.loads((tmp_path / "out" / "sensitivity.json").read_text())
    assert set(document) == {
        "status",
        "description",
        "sizes",
        "activations",
        "seeds",
        "reference",
        "preview",
        "preview_reasons",
        "variants",
        "outcome",
    }
    assert (
        main(["sensitivity", "--params", json.dumps({"variants": []}), "--out-dir", str(tmp_path / "off")])
        == 0
    )
    assert json.loads((tmp_path / "off" / "sensitivity.json").read_text())["status"] == "not run"
    bad = params(variants, seeds=[0, 7])
    assert main(["sensitivity", "--params", json.dumps(bad), "--out-dir", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert "trainact sensitivity: error:" in err and "seed7" in err
