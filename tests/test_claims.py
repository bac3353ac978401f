"""Claims engine: intervals, region verdicts, claims 1-4, the sizes scope and preview labels."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from trainact import claims as cl
from trainact.aggregate import load_published

PUBLISHED = {(r["size"], r["activation"]): r for r in load_published()["table1"]}
REPO = Path(__file__).resolve().parents[1]
QUICK_LIKE = {
    "dataset": {"train_per_class": 300, "test_per_class": 100, "synthetic": None},
    "train": {"epochs": 8, "lr_boundaries": [2, 4, 6], "learning_rates": [1e-3, 1e-4, 1e-5, 1e-6]},
}
QUICK_SCHEDULE = "8 epochs, learning-rate drops after epochs [2, 4, 6] (paper: [20, 40, 60] over at least 60 epochs)"


def summary_with(val_acc, autoencoder=None, pso=None):
    """A summary dict as aggregate writes it, from {(size, activation): [best val acc per seed]}."""
    runs = [
        {"size": size, "activation": activation, "seed": seed, "best_val_acc": value, "best_train_acc": value}
        for (size, activation), values in val_acc.items()
        for seed, value in enumerate(values)
    ]
    return {"runs": runs, "autoencoder": autoencoder or {"status": "not run"}, "pso": pso or {"status": "not run"}}


def paper_shaped(spread=(0.0, 0.002, 0.004)):
    """Best val acc per seed: the paper's values plus a per-seed shift shared by all models."""
    return {key: [row["val_acc"] + s for s in spread] for key, row in PUBLISHED.items()}


def outcomes(summary, **kwargs):
    return [claim["outcome"] for claim in cl.evaluate_claims(summary, **kwargs)]


def verdicts(summary, **kwargs):
    return [claim["verdict"] for claim in cl.evaluate_claims(summary, **kwargs)]


# ------------------------------------------------------------------------------ the engine


def test_interval_uses_student_t():
    mean, low, high = cl.interval([1.0, 2.0, 3.0], 2.0)
    assert mean == 2.0 and high - mean == pytest.approx(4.303 * 1.0 / math.sqrt(3))
    assert cl.interval([1.5], 2.0) == (1.5, -0.5, 3.5)
    assert cl.region_verdict(0.0, 1.0, (0.0, math.inf), open_low=True) == cl.INCONCLUSIVE
    assert cl.region_verdict(-1.0, 0.0, (0.0, math.inf), open_low=True) == cl.NOT_SUPPORTED
    with pytest.raises(ValueError, match="no values"):
        cl.interval([], 2.0)


def test_claims_supported_on_the_paper_numbers():
    claims = cl.evaluate_claims(summary_with(paper_shaped()))
    assert [c["verdict"] for c in claims[:2]] == [cl.SUPPORTED, cl.SUPPORTED]
    assert [c["preview"] for c in claims[:2]] == [False, False] and claims[0]["n_seeds"] == 3
    # small Fourier - ReLU: 0.6423 - 0.5914 = 5.09 pp on every seed: a zero-width interval
    small = claims[0]["comparisons"][0]
    assert small["label"] == "small: Fourier-CNN − CNN"
    assert small["values"] == pytest.approx([5.09] * 3) and small["low"] == pytest.approx(5.09)
    assert claims[0]["paper"]["values"][0] == {"label": "small Fourier", "value": 5.09, "unit": "pp"}


def test_claim1_not_supported_when_fourier_loses_at_one_size():
    values = paper_shaped()
    values[("middle", "fourier")] = [v - 0.08 for v in values[("middle", "fourier")]]  # 4.3 pp below ReLU
    claims = cl.evaluate_claims(summary_with(values))
    assert claims[0]["verdict"] == cl.NOT_SUPPORTED
    middle = [c for c in claims[0]["comparisons"] if c["label"] == "middle: Fourier-CNN − CNN"]
    assert middle[0]["verdict"] == cl.NOT_SUPPORTED and middle[0]["mean"] == pytest.approx(
        100 * (0.6738 - 0.08 - 0.6368)
    )


def test_claim1_inconclusive_under_a_large_seed_spread():
    values = paper_shaped()
    values[("large", "fourier")] = [0.6474 + d for d in (0.04, -0.02, 0.01)]  # +4, -2, +1 pp over ReLU's 0.6474...
    values[("large", "relu")] = [0.6474] * 3
    assert verdicts(summary_with(values))[0] == cl.INCONCLUSIVE


def test_claim2_flips_with_the_ranking():
    values = paper_shaped()
    values[("small", "lc")] = [v + 0.03 for v in values[("small", "fourier")]]  # LC clearly best on small
    assert verdicts(summary_with(values))[1] == cl.NOT_SUPPORTED


def test_claims_3_and_4_follow_their_numbers():
    base = paper_shaped()
    assert verdicts(summary_with(base))[2:] == [cl.NOT_RUN, cl.NOT_RUN]
    ae_rows = [
        {"diff_best_val_acc_pp": d, "diff_first_val_acc_pp": 5.0, "diff_final_val_acc_pp": d} for d in (2.0, 2.5, 1.8)
    ]
    pso_rows = [{"ratio": r} for r in (0.48, 0.52, 0.50)]
    summary = summary_with(base, {"status": "ok", "per_seed": ae_rows}, {"status": "ok", "per_seed": pso_rows})
    claims = cl.evaluate_claims(summary)
    assert [c["verdict"] for c in claims[2:]] == [cl.SUPPORTED, cl.SUPPORTED]
    assert [c["judged"] for c in claims[2]["comparisons"]] == [True, False, False]
    assert claims[3]["comparisons"][0]["note"] == "claimed region [0.4, 0.6]"
    ae_rows = [{**r, "diff_best_val_acc_pp": -d} for r, d in zip(ae_rows, (2.0, 2.5, 1.8))]
    pso_rows = [{"ratio": r} for r in (0.90, 0.92, 0.91)]
    summary = summary_with(base, {"status": "ok", "per_seed": ae_rows}, {"status": "ok", "per_seed": pso_rows})
    assert verdicts(summary)[2:] == [cl.NOT_SUPPORTED, cl.NOT_SUPPORTED]
    pso_rows = [{"ratio": r} for r in (0.45, 0.62)]  # interval straddles 0.6; two seeds: a preview
    claim4 = cl.evaluate_claims(summary_with(base, pso={"status": "ok", "per_seed": pso_rows}))[3]
    assert claim4["outcome"] == cl.INCONCLUSIVE and claim4["verdict"] == cl.PREVIEW_INCONCLUSIVE
    assert claim4["preview_reasons"] == ["2 seeds (< 3)"]


# ------------------------------------------------------------------------------ sizes scope


def test_missing_size_makes_a_claim_not_run():
    values = {key: v for key, v in paper_shaped().items() if key[0] != "large"}
    claims = cl.evaluate_claims(summary_with(values))
    assert [c["verdict"] for c in claims[:2]] == [cl.NOT_RUN, cl.NOT_RUN]
    assert "large: Fourier-CNN − CNN" in claims[0]["missing"]
    assert claims[0]["n_seeds"] is None and claims[0]["preview"] is False


def test_claims_on_the_small_networks_only():
    values = {key: v for key, v in paper_shaped().items() if key[0] == "small"}
    claims = cl.evaluate_claims(summary_with(values), sizes=["small"])
    assert claims[0]["verdict"] == "supported (small networks only)" and claims[0]["outcome"] == cl.SUPPORTED
    assert claims[0]["scope"] == "small networks only"
    assert [c["label"] for c in claims[0]["comparisons"]] == ["small: Fourier-CNN − CNN", "small: LC-CNN − CNN"]
    # claim 2 keeps its two small comparisons: Fourier over LC (0.6423 - 0.6337) and over ReLU
    assert [c["label"] for c in claims[1]["comparisons"]] == ["small: Fourier-CNN − LC-CNN", "small: Fourier-CNN − CNN"]
    assert claims[1]["comparisons"][0]["mean"] == pytest.approx(0.86)
    assert claims[1]["verdict"] == "supported (small networks only)" and claims[1]["missing"] == []
    # with one seed the same run is a preview, still scoped
    one = {key: v[:1] for key, v in values.items()}
    assert verdicts(summary_with(one), sizes=["small"])[0] == "preview: consistent with the claim (small networks only)"


def test_claim2_is_not_run_without_small_or_large_networks():
    values = {key: v for key, v in paper_shaped().items() if key[0] == "middle"}
    claims = cl.evaluate_claims(summary_with(values), sizes=["middle"])
    assert claims[0]["verdict"] == "supported (middle networks only)"
    assert claims[1]["verdict"] == cl.NOT_RUN and len(claims[1]["missing"]) == 4
    assert cl.scope_text(["small", "large"]) == "small and large networks only"
    # claim 2 is about small and large networks: with small and middle its scope is the small ones
    values = {key: v for key, v in paper_shaped().items() if key[0] != "large"}
    claims = cl.evaluate_claims(summary_with(values), sizes=["small", "middle"])
    assert claims[0]["verdict"] == "supported (small and middle networks only)"
    assert claims[1]["verdict"] == "supported (small networks only)"
    values = {key: v for key, v in paper_shaped().items() if key[0] != "middle"}
    claims = cl.evaluate_claims(summary_with(values), sizes=["small", "large"])
    assert claims[0]["verdict"] == "supported (small and large networks only)" and claims[1]["verdict"] == cl.SUPPORTED
    assert cl.scope_text(["large", "small", "middle"]) is None
    with pytest.raises(ValueError, match="huge"):
        cl.evaluate_claims(summary_with(values), sizes=["huge"])


# --------------------------------------------------------------------------------- previews


def test_preview_reasons_of_a_quick_like_config():
    assert cl.preview_reasons(QUICK_LIKE, 1) == [
        "1 seed (< 3)",
        QUICK_SCHEDULE,
        "3,000 training images (paper: 50,000)",
    ]
    assert cl.preview_reasons(QUICK_LIKE, 3) == [QUICK_SCHEDULE, "3,000 training images (paper: 50,000)"]


def test_preview_reasons_of_the_paper_config():
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    assert cl.preview_reasons(config, 3) == []
    assert cl.preview_reasons(config, 2) == ["2 seeds (< 3)"]
    assert cl.preview_reasons({}, 3) == [] and cl.preview_reasons({}, 1) == ["1 seed (< 3)"]


def test_preview_reasons_schedule_rule():
    paper_train = {"epochs": 80, "lr_boundaries": [20, 40, 60], "learning_rates": [1e-3, 1e-4, 1e-5, 1e-6]}
    # enough epochs, but the first drop comes 10 epochs early: shorter
    early = {"train": {**paper_train, "lr_boundaries": [10, 40, 60]}}
    assert cl.preview_reasons(early, 3) == [
        "80 epochs, learning-rate drops after epochs [10, 40, 60] (paper: [20, 40, 60] over at least 60 epochs)"
    ]
    # later drops and exactly 60 epochs are not shorter
    assert cl.preview_reasons({"train": {**paper_train, "lr_boundaries": [30, 50, 70]}}, 3) == []
    assert cl.preview_reasons({"train": {**paper_train, "epochs": 60}}, 3) == []
    assert cl.preview_reasons({"train": {"epochs": 59}}, 3) == [
        "59 epochs (paper: learning-rate drops after epochs [20, 40, 60] over at least 60 epochs)"
    ]
    # other learning rates, the full training set, synthetic data
    smoke = {
        "dataset": {"train_per_class": None, "synthetic": {"train_per_class": 30, "test_per_class": 10, "seed": 0}},
        "train": {"epochs": 2, "lr_boundaries": [1], "learning_rates": [1e-3, 1e-4]},
    }
    assert cl.preview_reasons(smoke, 1) == [
        "1 seed (< 3)",
        "2 epochs, learning-rate drops after epochs [1] (paper: [20, 40, 60] over at least 60 epochs)",
        "learning rates [0.001, 0.0001] (paper: [0.001, 0.0001, 1e-05, 1e-06])",
        "synthetic data, 300 training images (paper: CIFAR-10, 50,000)",
    ]
    assert cl.preview_reasons({"dataset": {"train_per_class": 5000}}, 3) == []  # 50,000 images
    with pytest.raises(ValueError, match="mapping"):
        cl.preview_reasons(["train"], 3)


def test_verdict_labels_with_one_seed_and_with_three():
    # three seeds, no settings: plain verdicts
    three = cl.evaluate_claims(summary_with(paper_shaped()), settings={})
    assert three[0]["verdict"] == cl.SUPPORTED and three[0]["preview_reasons"] == []
    # one seed: small +5.09/+4.23, middle +3.70/+1.64, large +1.27/+3.17: 1.64 and 1.27 < the 2 pp margin
    values = {key: [row["val_acc"]] for key, row in PUBLISHED.items()}
    one = cl.evaluate_claims(summary_with(values))[0]
    assert (one["outcome"], one["verdict"]) == (cl.INCONCLUSIVE, "preview: inconclusive")
    assert one["preview"] is True and one["preview_reasons"] == ["1 seed (< 3)"] and one["n_seeds"] == 1
    for size in ("middle", "large"):
        for activation in ("fourier", "lc"):
            values[(size, activation)] = [values[(size, "relu")][0] + 0.03]
    one = cl.evaluate_claims(summary_with(values))[0]
    assert (one["outcome"], one["verdict"]) == (cl.SUPPORTED, "preview: consistent with the claim")
    values[("small", "fourier")] = [values[("small", "relu")][0] - 0.03]
    one = cl.evaluate_claims(summary_with(values))[0]
    assert (one["outcome"], one["verdict"]) == (cl.NOT_SUPPORTED, "preview: inconsistent with the claim")
    # three seeds but the quick schedule: still a preview
    quick = cl.evaluate_claims(summary_with(paper_shaped()), settings=QUICK_LIKE)[0]
    assert quick["verdict"] == cl.PREVIEW_CONSISTENT
    assert quick["preview_reasons"] == [QUICK_SCHEDULE, "3,000 training images (paper: 50,000)"]
    # no preview label is ever "supported" / "not supported"
    assert all(not label.endswith("supported") for label in cl.PREVIEW_LABELS.values())
    assert cl.verdict_label(cl.NOT_RUN, True, "small networks only") == cl.NOT_RUN


def test_claims_module_is_torch_free():
    from trainact.sourcegraph import imported_names, trainact_closure

    names = {n for m in trainact_closure("trainact.claims") for n in imported_names(m)}
    assert not {n.split(".")[0] for n in names} & {"torch", "jinja2", "matplotlib"}
    assert "trainact.report" not in trainact_closure("trainact.claims")
