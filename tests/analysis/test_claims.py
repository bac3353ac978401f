"""Claims engine: intervals, Holm, region verdicts, claims 1-7, the sizes scope and preview labels.

The claims are judged as ``trainact aggregate`` judges them: on the paired differences of
``aggregate.summarize_claims`` (:func:`evaluate` below)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from trainact.analysis import claims as cl
from trainact.analysis import preview as pv
from trainact.analysis import statistics as st
from trainact.analysis import thresholds as th
from trainact.analysis import verdicts as vd
from trainact.analysis.tables import load_published

PUBLISHED = {(r["size"], r["activation"]): r for r in load_published()["table1"]}
REPO = Path(__file__).resolve().parents[2]
QUICK_LIKE = {
    "dataset": {"train_per_class": 300, "test_per_class": 1000, "synthetic": None},
    "train": {"epochs": 8, "lr_boundaries": [2, 4, 6], "learning_rates": [1e-3, 1e-4, 1e-5, 1e-6]},
}
QUICK_SCHEDULE = (
    "8 epochs, learning-rate drops after epochs [2, 4, 6] (paper: [20, 40, 60] over at least 60 epochs)"
)


def summary_with(val_acc, autoencoder=None, pso=None):
    """A summary dict as aggregate writes it, from {(size, activation): [best val acc per seed]}."""
    runs = [
        {
            "size": size,
            "activation": activation,
            "seed": seed,
            "best_val_acc": value,
            "best_train_acc": value,
            "final_val_acc": value,
        }
        for (size, activation), values in val_acc.items()
        for seed, value in enumerate(values)
    ]
    return {
        "runs": runs,
        "autoencoder": autoencoder or {"status": "not run"},
        "pso": pso or {"status": "not run"},
    }


def paper_shaped(spread=(0.0, 0.002, 0.004)):
    """Best val acc per seed: the paper's values plus a per-seed shift shared by all models."""
    return {key: [row["val_acc"] + s for s in spread] for key, row in PUBLISHED.items()}


def evaluate(summary, published=None, **kwargs):
    """The claims on ``summary``'s runs and Section 5 parts, as ``trainact aggregate`` judges them."""
    return cl.summarize_claims(
        pd.DataFrame(summary["runs"]),
        published if published is not None else load_published(),
        autoencoder=summary.get("autoencoder"),
        pso=summary.get("pso"),
        **kwargs,
    )


def outcomes(summary, **kwargs):
    return [claim["outcome"] for claim in evaluate(summary, **kwargs)]


def verdicts(summary, **kwargs):
    return [claim["verdict"] for claim in evaluate(summary, **kwargs)]


# ------------------------------------------------------------------------------ the engine


def test_student_t_quantiles_are_scipys():
    # published two-sided 95 % values (t tables) and the 80 % quantiles of the power formula
    assert st.t_quantile(0.975, 2) == pytest.approx(4.303, abs=5e-4)
    assert st.t_quantile(0.975, 1) == pytest.approx(12.706, abs=5e-4)
    assert st.t_quantile(0.975, 30) == pytest.approx(2.042, abs=5e-4)
    assert st.t_quantile(0.975, 100) == pytest.approx(1.984, abs=5e-4)  # beyond any hand table
    assert st.t_quantile(0.8, 2) == pytest.approx(1.061, abs=5e-4)
    assert not hasattr(cl, "T_975") and not hasattr(cl, "SINGLE_SEED_HALF_WIDTH_PP")


def test_interval_uses_student_t_and_one_seed_has_none():
    mean, low, high = st.interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and high - mean == pytest.approx(4.302653 * 1.0 / math.sqrt(3))
    assert st.interval([1.5]) == (1.5, None, None)
    with pytest.raises(ValueError, match="no values"):
        st.interval([])


def test_minimum_detectable_difference_and_one_sided_p():
    # n = 3, s = 1: (t(0.975, 2) + t(0.8, 2)) / sqrt(3) = (4.3027 + 1.0607) / 1.7321
    assert st.min_detectable_difference([1.0, 2.0, 3.0]) == pytest.approx(
        (4.302653 + 1.060660) / math.sqrt(3)
    )
    assert st.min_detectable_difference([2.0]) is None
    # mean 2, se 1/sqrt(3): t = 2 * sqrt(3) = 3.464 with 2 dof -> one-sided p 0.0371
    assert st.one_sided_p([1.0, 2.0, 3.0], 0.0, greater=True) == pytest.approx(0.03709, abs=1e-4)
    assert st.one_sided_p([1.0, 2.0, 3.0], 0.0, greater=False) == pytest.approx(1 - 0.03709, abs=1e-4)
    assert (
        st.one_sided_p([2.0, 2.0], 0.0, greater=False) == 1.0 and st.one_sided_p([2.0, 2.0], 0.0, True) == 0.0
    )
    assert st.one_sided_p([2.0], 0.0, greater=True) is None
    # the wrong direction of a two-sided region is the nearer side
    assert st.wrong_direction_p([0.3, 0.31], cl.ABOUT_HALF_REGION) == pytest.approx(
        st.one_sided_p([0.3, 0.31], 0.4, greater=False)
    )


def test_holm_adjustment_by_hand():
    # sorted 0.01, 0.02, 0.03, 0.5 -> 4 * 0.01, max(0.04, 3 * 0.02), max(0.06, 2 * 0.03), 0.5
    assert st.holm_adjusted([0.03, 0.5, 0.01, 0.02]) == pytest.approx([0.06, 0.5, 0.04, 0.06])
    assert st.holm_adjusted([0.4, 0.9]) == pytest.approx([0.8, 0.9])
    assert st.holm_adjusted([]) == []


def _seeds_with_p(p, n=3):
    """Three values with sample std 1 whose one-sided p-value for "mean < 0" is ``p``."""
    mean = st.t_quantile(p, n - 1) / math.sqrt(n)
    return [mean - 1.0, mean, mean + 1.0]


def test_holm_keeps_one_mildly_negative_comparison_of_six_from_refuting_a_claim():
    mild = _seeds_with_p(0.03)
    assert st.one_sided_p(mild, 0.0, greater=False) == pytest.approx(0.03)
    positive = [vd.Comparison(f"c{i}", [5.0, 5.5, 6.0]) for i in range(5)]
    evidence = vd.judge(positive + [vd.Comparison("mild", mild)])
    assert [e.verdict for e in evidence] == [vd.SUPPORTED] * 5 + [vd.INCONCLUSIVE]
    # the mild one has the smallest wrong-direction p of the six: Holm multiplies it by 6
    assert evidence[-1].p_wrong == pytest.approx(0.03) and evidence[-1].p_holm == pytest.approx(6 * 0.03)
    assert vd.combine([e.verdict for e in evidence]) == vd.INCONCLUSIVE
    # unadjusted, 0.03 < 0.05 would have refuted it; strongly negative (p 0.001 -> 0.006) still does
    evidence = vd.judge([vd.Comparison(f"m{i}", _seeds_with_p(0.5)) for i in range(5)]
                        + [vd.Comparison("strong", _seeds_with_p(0.001))])  # fmt: skip
    assert evidence[-1].p_holm == pytest.approx(0.006) and evidence[-1].verdict == vd.NOT_SUPPORTED
    assert vd.combine([e.verdict for e in evidence]) == vd.NOT_SUPPORTED
    # context comparisons stay out of the family
    evidence = vd.judge([vd.Comparison("mild", mild), vd.Comparison("ctx", _seeds_with_p(0.5), judged=False)])
    assert evidence[0].p_holm == pytest.approx(0.03) and evidence[0].verdict == vd.NOT_SUPPORTED


def test_one_seed_has_no_interval_and_only_a_direction():
    (evidence,) = vd.judge([vd.Comparison("x", [2.0])])
    assert (evidence.low, evidence.high, evidence.p_wrong, evidence.p_holm, evidence.min_detectable) == (
        None,
    ) * 5
    assert evidence.verdict == vd.CONSISTENT
    assert vd.judge([vd.Comparison("x", [-0.5])])[0].verdict == vd.INCONSISTENT
    assert vd.verdict_label(vd.CONSISTENT, True) == vd.PREVIEW_CONSISTENT
    assert vd.verdict_label(vd.INCONSISTENT, True) == vd.PREVIEW_INCONSISTENT
    assert vd.combine([vd.SUPPORTED, vd.CONSISTENT]) == vd.CONSISTENT
    assert vd.combine([vd.INCONCLUSIVE, vd.INCONSISTENT]) == vd.INCONSISTENT
    assert vd.NO_INTERVAL == "no interval (1 seed)" and vd.NO_INTERVAL in cl.CLAIMS_RULE


def test_claims_supported_on_the_paper_numbers():
    claims = evaluate(summary_with(paper_shaped()))
    assert [c["verdict"] for c in claims[:2]] == [vd.SUPPORTED, vd.SUPPORTED]
    assert [c["preview"] for c in claims[:2]] == [False, False] and claims[0]["n_seeds"] == 3
    # small Fourier - ReLU: 0.6423 - 0.5914 = 5.09 pp on every seed: a zero-width interval
    small = claims[0]["comparisons"][0]
    assert small["label"] == "small: Fourier-CNN − CNN"
    assert small["values"] == pytest.approx([5.09] * 3) and small["low"] == pytest.approx(5.09)
    assert claims[0]["paper"]["values"][0] == {"label": "small Fourier", "value": 5.09, "unit": "pp"}


def test_claim1_not_supported_when_fourier_loses_at_one_size():
    values = paper_shaped()
    values[("middle", "fourier")] = [v - 0.08 for v in values[("middle", "fourier")]]  # 4.3 pp below ReLU
    claims = evaluate(summary_with(values))
    assert claims[0]["verdict"] == vd.NOT_SUPPORTED
    middle = [c for c in claims[0]["comparisons"] if c["label"] == "middle: Fourier-CNN − CNN"]
    assert middle[0]["verdict"] == vd.NOT_SUPPORTED and middle[0]["mean"] == pytest.approx(
        100 * (0.6738 - 0.08 - 0.6368)
    )


def test_claim1_inconclusive_under_a_large_seed_spread():
    values = paper_shaped()
    values[("large", "fourier")] = [
        0.6474 + d for d in (0.04, -0.02, 0.01)
    ]  # +4, -2, +1 pp over ReLU's 0.6474...
    values[("large", "relu")] = [0.6474] * 3
    assert verdicts(summary_with(values))[0] == vd.INCONCLUSIVE


def test_claim2_flips_with_the_ranking():
    values = paper_shaped()
    values[("small", "lc")] = [v + 0.03 for v in values[("small", "fourier")]]  # LC clearly best on small
    assert verdicts(summary_with(values))[1] == vd.NOT_SUPPORTED


def ae_rows(final=(2.0, 2.5, 1.8), first=(5.0, 4.0, 6.0), epochs=(3, 4, 2), best=(9.0, 9.0, 9.0)):
    return [
        {
            "diff_final_val_acc_pp": f,
            "diff_first_val_acc_pp": e1,
            "diff_epochs_to_target": n,
            "diff_best_val_acc_pp": b,
        }
        for f, e1, n, b in zip(final, first, epochs, best)
    ]


def pso_rows(final, best=None):
    return [{"final_ratio": f, "ratio": b} for f, b in zip(final, best or final)]


def test_claims_3_and_4_follow_their_numbers():
    base = paper_shaped()
    assert verdicts(summary_with(base))[2:4] == [vd.NOT_RUN, vd.NOT_RUN]
    ok = {"status": "ok"}
    summary = summary_with(
        base, {**ok, "per_seed": ae_rows()}, {**ok, "per_seed": pso_rows((0.48, 0.52, 0.50))}
    )
    claims = evaluate(summary)
    assert [c["verdict"] for c in claims[2:4]] == [vd.SUPPORTED, vd.SUPPORTED]
    assert [(c["label"], c["judged"], c["unit"]) for c in claims[2]["comparisons"]] == [
        ("final val acc, pretrained − not pretrained", True, "pp"),
        ("epoch-1 val acc, pretrained − not pretrained", True, "pp"),
        ("epochs to the target, not pretrained − pretrained", True, "epochs"),
        ("best val acc (the paper's measure; context)", False, "pp"),
    ]
    assert [(c["claimed"], c["judged"]) for c in claims[3]["comparisons"]] == [
        ("in [0.4, 0.6]", True), ("< 1", True), ("in [0.4, 0.6]", False),
    ]  # fmt: skip
    # a negative final difference refutes claim 3 though the best-over-epochs one is +9 pp
    negative = summary_with(base, {**ok, "per_seed": ae_rows(final=(-2.0, -2.5, -1.8))})
    assert verdicts(negative)[2] == vd.NOT_SUPPORTED
    # "starts higher" and "converges faster" are judged too: slower convergence refutes
    slower = summary_with(base, {**ok, "per_seed": ae_rows(epochs=(-3, -4, -5))})
    claim3 = evaluate(slower)[2]
    assert claim3["outcome"] == vd.NOT_SUPPORTED
    assert [c["verdict"] for c in claim3["comparisons"][:3]] == [vd.SUPPORTED, vd.SUPPORTED, vd.NOT_SUPPORTED]
    lower_start = summary_with(base, {**ok, "per_seed": ae_rows(first=(0.5, -0.5, 1.0))})
    assert evaluate(lower_start)[2]["outcome"] == vd.INCONCLUSIVE
    # PSO at 0.9 of RMSProp: lower than BP (supported) but not about half (not supported)
    claim4 = evaluate(summary_with(base, pso={**ok, "per_seed": pso_rows((0.90, 0.92, 0.91))}))[3]
    assert [c["verdict"] for c in claim4["comparisons"][:2]] == [vd.NOT_SUPPORTED, vd.SUPPORTED]
    assert claim4["outcome"] == vd.NOT_SUPPORTED
    # PSO above BP: "lower than BP" not supported
    claim4 = evaluate(summary_with(base, pso={**ok, "per_seed": pso_rows((1.10, 1.12, 1.11))}))[3]
    assert [c["verdict"] for c in claim4["comparisons"][:2]] == [vd.NOT_SUPPORTED, vd.NOT_SUPPORTED]
    two = evaluate(summary_with(base, pso={**ok, "per_seed": pso_rows((0.45, 0.62))}))[3]  # straddles 0.6
    assert two["outcome"] == vd.INCONCLUSIVE and two["verdict"] == vd.PREVIEW_INCONCLUSIVE
    assert two["preview_reasons"] == ["2 seeds (< 3)"]
    # the verdict is on the final ratio, not the paper's best-over-generations one
    best_only = evaluate(
        summary_with(base, pso={**ok, "per_seed": pso_rows((0.9, 0.9, 0.91), best=(0.5, 0.5, 0.5))})
    )
    assert best_only[3]["outcome"] == vd.NOT_SUPPORTED


# ------------------------------------------------------------------------------ sizes scope


def test_missing_size_makes_a_claim_not_run():
    values = {key: v for key, v in paper_shaped().items() if key[0] != "large"}
    claims = evaluate(summary_with(values))
    assert [c["verdict"] for c in claims[:2]] == [vd.NOT_RUN, vd.NOT_RUN]
    assert "large: Fourier-CNN − CNN" in claims[0]["missing"]
    assert claims[0]["n_seeds"] is None and claims[0]["preview"] is False


def test_claims_on_the_small_networks_only():
    values = {key: v for key, v in paper_shaped().items() if key[0] == "small"}
    claims = evaluate(summary_with(values), sizes=["small"])
    assert claims[0]["verdict"] == "supported (small networks only)" and claims[0]["outcome"] == vd.SUPPORTED
    assert claims[0]["scope"] == "small networks only"
    assert [c["label"] for c in claims[0]["comparisons"]] == [
        "small: Fourier-CNN − CNN",
        "small: LC-CNN − CNN",
    ]
    # claim 2 keeps its two small comparisons: Fourier over LC (0.6423 - 0.6337) and over ReLU
    assert [c["label"] for c in claims[1]["comparisons"]] == [
        "small: Fourier-CNN − LC-CNN",
        "small: Fourier-CNN − CNN",
    ]
    assert claims[1]["comparisons"][0]["mean"] == pytest.approx(0.86)
    assert claims[1]["verdict"] == "supported (small networks only)" and claims[1]["missing"] == []
    # with one seed the same run is a preview, still scoped
    one = {key: v[:1] for key, v in values.items()}
    assert (
        verdicts(summary_with(one), sizes=["small"])[0]
        == "preview: consistent with the claim (small networks only)"
    )


def test_claim2_is_not_run_without_small_or_large_networks():
    values = {key: v for key, v in paper_shaped().items() if key[0] == "middle"}
    claims = evaluate(summary_with(values), sizes=["middle"])
    assert claims[0]["verdict"] == "supported (middle networks only)"
    assert claims[1]["verdict"] == vd.NOT_RUN and len(claims[1]["missing"]) == 4
    assert cl.scope_text(["small", "large"]) == "small and large networks only"
    # claim 2 is about small and large networks: with small and middle its scope is the small ones
    values = {key: v for key, v in paper_shaped().items() if key[0] != "large"}
    claims = evaluate(summary_with(values), sizes=["small", "middle"])
    assert claims[0]["verdict"] == "supported (small and middle networks only)"
    assert claims[1]["verdict"] == "supported (small networks only)"
    values = {key: v for key, v in paper_shaped().items() if key[0] != "middle"}
    claims = evaluate(summary_with(values), sizes=["small", "large"])
    assert (
        claims[0]["verdict"] == "supported (small and large networks only)"
        and claims[1]["verdict"] == vd.SUPPORTED
    )
    assert cl.scope_text(["large", "small", "middle"]) is None
    with pytest.raises(ValueError, match="huge"):
        evaluate(summary_with(values), sizes=["huge"])


# --------------------------------------------------------------------------------- previews


def test_preview_reasons_of_a_quick_like_config():
    assert pv.preview_reasons(QUICK_LIKE, 1) == [
        "1 seed (< 3)",
        QUICK_SCHEDULE,
        "3,000 training images (paper: 50,000)",
    ]
    assert pv.preview_reasons(QUICK_LIKE, 3) == [QUICK_SCHEDULE, "3,000 training images (paper: 50,000)"]


def test_preview_reasons_of_the_paper_config():
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    assert pv.preview_reasons(config, 3) == []
    assert pv.preview_reasons(config, 2) == ["2 seeds (< 3)"]
    assert pv.preview_reasons({}, 3) == [] and pv.preview_reasons({}, 1) == ["1 seed (< 3)"]


def test_preview_reasons_for_the_test_set_and_the_batch_size():
    assert pv.preview_reasons({"dataset": {"test_per_class": 100}}, 3) == [
        "1,000 test images (paper: 10,000)"
    ]
    assert pv.preview_reasons({"dataset": {"test_per_class": 1000}}, 3) == []  # the whole test batch
    assert pv.preview_reasons({"dataset": {"test_per_class": None}}, 3) == []
    synthetic = {"synthetic": {"train_per_class": 5000, "test_per_class": 50}}
    assert pv.preview_reasons({"dataset": synthetic}, 3) == [
        "synthetic data, 50,000 training images (paper: CIFAR-10, 50,000)",
        "500 synthetic test images (paper: 10,000)",
    ]
    assert pv.preview_reasons({"train": {"batch_size": 64}}, 3) == [
        "batch size 64 (paper silent; paper config 128)"
    ]
    assert pv.preview_reasons({"train": {"batch_size": 128}}, 3) == []
    assert th.PAPER_CONFIG_BATCH_SIZE == 128 and "batch size than 128" in pv.PREVIEW_RULE
    # the paper preset of config.yaml has the paper's batch size and whole test set
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    assert config["train"]["batch_size"] == th.PAPER_CONFIG_BATCH_SIZE and pv.preview_reasons(config, 3) == []


def test_preview_reasons_schedule_rule():
    paper_train = {"epochs": 80, "lr_boundaries": [20, 40, 60], "learning_rates": [1e-3, 1e-4, 1e-5, 1e-6]}
    # enough epochs, but the first drop comes 10 epochs early: shorter
    early = {"train": {**paper_train, "lr_boundaries": [10, 40, 60]}}
    assert pv.preview_reasons(early, 3) == [
        "80 epochs, learning-rate drops after epochs [10, 40, 60] "
        "(paper: [20, 40, 60] over at least 60 epochs)"
    ]
    # later drops and exactly 60 epochs are not shorter
    assert pv.preview_reasons({"train": {**paper_train, "lr_boundaries": [30, 50, 70]}}, 3) == []
    assert pv.preview_reasons({"train": {**paper_train, "epochs": 60}}, 3) == []
    assert pv.preview_reasons({"train": {"epochs": 59}}, 3) == [
        "59 epochs (paper: learning-rate drops after epochs [20, 40, 60] over at least 60 epochs)"
    ]
    # other learning rates, the full training set, synthetic data
    smoke = {
        "dataset": {
            "train_per_class": None,
            "synthetic": {"train_per_class": 30, "test_per_class": 10, "seed": 0},
        },
        "train": {"epochs": 2, "lr_boundaries": [1], "learning_rates": [1e-3, 1e-4]},
    }
    assert pv.preview_reasons(smoke, 1) == [
        "1 seed (< 3)",
        "2 epochs, learning-rate drops after epochs [1] (paper: [20, 40, 60] over at least 60 epochs)",
        "learning rates [0.001, 0.0001] (paper: [0.001, 0.0001, 1e-05, 1e-06])",
        "synthetic data, 300 training images (paper: CIFAR-10, 50,000)",
        "100 synthetic test images (paper: 10,000)",
    ]
    assert pv.preview_reasons({"dataset": {"train_per_class": 5000}}, 3) == []  # 50,000 images
    # a validation split held out of the training images leaves fewer to train on
    assert pv.preview_reasons({"dataset": {"train_per_class": None, "validation_per_class": 500}}, 3) == [
        "45,000 training images, 5,000 held out for validation (paper: 50,000)"
    ]
    quick = {"train_per_class": 1000, "validation_per_class": 100, "synthetic": None}
    assert pv.preview_reasons({"dataset": quick}, 3) == [
        "9,000 training images, 1,000 held out for validation (paper: 50,000)"
    ]
    with_split = {**smoke["dataset"], "validation_per_class": 5}
    assert pv.preview_reasons({"dataset": with_split}, 3) == [
        "synthetic data, 250 training images, 50 held out for validation (paper: CIFAR-10, 50,000)",
        "100 synthetic test images (paper: 10,000)",
    ]
    with pytest.raises(ValueError, match="mapping"):
        pv.preview_reasons(["train"], 3)


def test_verdict_labels_with_one_seed_and_with_three():
    # three seeds, no settings: plain verdicts
    three = evaluate(summary_with(paper_shaped()), settings={})
    assert three[0]["verdict"] == vd.SUPPORTED and three[0]["preview_reasons"] == []
    # one seed: no interval, only the direction of each difference, always a preview
    values = {key: [row["val_acc"]] for key, row in PUBLISHED.items()}
    one = evaluate(summary_with(values))[0]
    assert (one["outcome"], one["verdict"]) == (vd.CONSISTENT, "preview: consistent with the claim")
    assert one["preview"] is True and one["preview_reasons"] == ["1 seed (< 3)"] and one["n_seeds"] == 1
    assert all(c["low"] is None and c["high"] is None for c in one["comparisons"])
    values[("small", "fourier")] = [values[("small", "relu")][0] - 0.001]  # a tenth of a point below
    one = evaluate(summary_with(values))[0]
    assert (one["outcome"], one["verdict"]) == (vd.INCONSISTENT, "preview: inconsistent with the claim")
    # three seeds but the quick schedule: still a preview
    quick = evaluate(summary_with(paper_shaped()), settings=QUICK_LIKE)[0]
    assert quick["verdict"] == vd.PREVIEW_CONSISTENT
    assert quick["preview_reasons"] == [QUICK_SCHEDULE, "3,000 training images (paper: 50,000)"]
    # no preview label is ever "supported" / "not supported"
    assert all(not label.endswith("supported") for label in vd.PREVIEW_LABELS.values())
    assert vd.verdict_label(vd.NOT_RUN, True, "small networks only") == vd.NOT_RUN


def test_claims_module_is_torch_free():
    from trainact.sourcegraph import imported_names, trainact_closure

    names = {n for m in trainact_closure("trainact.analysis.claims") for n in imported_names(m)}
    assert not {n.split(".")[0] for n in names} & {"torch", "jinja2", "matplotlib"}
    assert "trainact.report.paper_report" not in trainact_closure("trainact.analysis.claims")
    # pure over aggregate's numbers: aggregate runs the check, so claims must not import it back
    assert "trainact.analysis.aggregate" not in trainact_closure("trainact.analysis.claims")
    assert "trainact.analysis.claims" in trainact_closure("trainact.analysis.aggregate")


# ------------------------------------------------------------------ what each claim says (pinned)

CLAIM_TEXTS = [
    (
        1,
        "Trainable activations (Fourier-CNN and LC-CNN) reach a higher validation accuracy than the ReLU CNN "
        "at every size.",
        "Fourier-CNN and LC-CNN beat the ReLU CNN at every size",
        "Section 3",
    ),
    (
        2,
        "Fourier-CNN is the best of the three on small networks, LC-CNN the best on large networks "
        "(validation accuracy).",
        "Fourier-CNN best on small networks, LC-CNN best on large ones",
        "Sections 3 and 6",
    ),
    (
        3,
        "Autoencoder pretraining improves the middle Fourier-CNN: its validation accuracy "
        '"starts from a higher value", it "converge[s] faster" and reaches a higher accuracy.',
        "Autoencoder pretraining improves the middle Fourier-CNN",
        "Sections 5.1 and 6",
    ),
    (
        4,
        'PSO training reaches a lower accuracy than BP (RMSProp), "about half" of it (middle CNN).',
        "PSO reaches about half of RMSProp's accuracy (middle CNN)",
        "Sections 5.2 and 6",
    ),
    (
        5,
        "The improvement of the trainable activations over the ReLU CNN "
        '"is more significant on smaller networks" (validation accuracy).',
        "The improvement over the ReLU CNN is larger on smaller networks",
        "Section 3",
    ),
    (
        6,
        "At middle and large size the trainable networks reach "
        '"higher accuracy on validation data but lower accuracy on training data" than the ReLU CNN '
        '("better generalization ability"): a smaller gap between training and validation accuracy.',
        "Trainable activations generalise better at middle and large size (smaller train − test gap)",
        "Section 4.1",
    ),
    (
        7,
        'Trainable activations "will not be worse than simple non-trainable activation functions '
        'if it is properly trained": '
        "validation accuracy not below the ReLU CNN's by more than 1 pp at any size.",
        "Trainable activations are not worse than ReLU (margin 1 pp)",
        "Sections 2.2 and 6",
    ),
]
PAPER_OF_CLAIM = [
    {
        "source": "Table 2 (validation, pp)",
        "values": [
            {"label": "small Fourier", "value": 5.09, "unit": "pp"},
            {"label": "small LC", "value": 4.23, "unit": "pp"},
            {"label": "middle Fourier", "value": 3.7, "unit": "pp"},
            {"label": "middle LC", "value": 1.64, "unit": "pp"},
            {"label": "large Fourier", "value": 1.27, "unit": "pp"},
            {"label": "large LC", "value": 3.17, "unit": "pp"},
        ],
    },
    {
        "source": "Table 1 (validation accuracy)",
        "values": [
            {"label": "small Fourier", "value": 0.6423, "unit": "acc"},
            {"label": "small LC", "value": 0.6337, "unit": "acc"},
            {"label": "small CNN", "value": 0.5914, "unit": "acc"},
            {"label": "large LC", "value": 0.6791, "unit": "acc"},
            {"label": "large Fourier", "value": 0.6601, "unit": "acc"},
            {"label": "large CNN", "value": 0.6474, "unit": "acc"},
        ],
    },
    {"source": "Figure 8 only (no numbers)", "values": []},
    {"source": "Figure 9 only (no numbers)", "values": []},
    {
        "source": "Table 2 (validation, pp), smaller minus large",
        "values": [
            {"label": "Fourier small − large", "value": 3.82, "unit": "pp"},
            {"label": "Fourier middle − large", "value": 2.43, "unit": "pp"},
            {"label": "LC small − large", "value": 1.06, "unit": "pp"},
            {"label": "LC middle − large", "value": -1.53, "unit": "pp"},
        ],
    },
    {
        "source": "Table 2 (training − validation improvement, pp)",
        "values": [
            {"label": "middle Fourier", "value": -8.59, "unit": "pp"},
            {"label": "middle LC", "value": -2.88, "unit": "pp"},
            {"label": "large Fourier", "value": -2.84, "unit": "pp"},
            {"label": "large LC", "value": -3.12, "unit": "pp"},
        ],
    },
    {"source": "Sections 2.2 and 6 (an argument, no numbers)", "values": []},
]
CLAIM_KEYS = [
    "number", "claim", "short", "source", "paper", "scope", "comparisons", "missing",
    "n_seeds", "preview", "preview_reasons", "outcome", "verdict",
]  # fmt: skip


def test_each_claim_states_its_text_source_and_the_papers_numbers():
    summary = summary_with(paper_shaped())
    del summary["autoencoder"], summary["pso"]  # an old summary without the Section 5 parts: not run
    claims = evaluate(summary)
    assert [list(c) for c in claims] == [CLAIM_KEYS] * 7
    assert [(c["number"], c["claim"], c["short"], c["source"]) for c in claims] == CLAIM_TEXTS
    assert [c["paper"] for c in claims] == PAPER_OF_CLAIM
    assert [c["comparisons"][0]["label"] if c["comparisons"] else None for c in claims] == [
        "small: Fourier-CNN − CNN", "small: Fourier-CNN − LC-CNN", None, None,
        "Fourier-CNN − CNN: small − large", None, "small: Fourier-CNN − CNN",
    ]  # fmt: skip
    assert [c["label"] for c in claims[1]["comparisons"]] == [
        "small: Fourier-CNN − LC-CNN",
        "small: Fourier-CNN − CNN",
        "large: LC-CNN − Fourier-CNN",
        "large: LC-CNN − CNN",
    ]
    # paper-shaped numbers: the size trend holds for Fourier (+3.82, +2.43) but LC's middle improvement is
    # below its large one (-1.53, zero spread): claim 5 not supported; no train_eval_acc: claim 6 not run
    assert [c["outcome"] for c in claims] == [
        vd.SUPPORTED, vd.SUPPORTED, vd.NOT_RUN, vd.NOT_RUN, vd.NOT_SUPPORTED, vd.NOT_RUN, vd.SUPPORTED,
    ]  # fmt: skip
    assert [c["n_seeds"] for c in claims] == [3, 3, None, None, 3, None, 3]
    assert [c["missing"] for c in claims] == [[], [], [], [], [], [cl.NO_TRAIN_EVAL], []]


def test_not_run_claims_keep_their_text_and_name_what_is_missing():
    values = {key: v for key, v in paper_shaped().items() if key[0] == "middle"}
    claims = evaluate(summary_with(values), sizes=["middle"])
    assert [(c["number"], c["claim"], c["short"], c["source"]) for c in claims] == CLAIM_TEXTS
    assert [c["paper"] for c in claims] == PAPER_OF_CLAIM
    assert claims[1]["missing"] == [
        "small: Fourier-CNN − LC-CNN",
        "small: Fourier-CNN − CNN",
        "large: LC-CNN − Fourier-CNN",
        "large: LC-CNN − CNN",
    ]
    assert (claims[1]["outcome"], claims[1]["scope"], claims[1]["n_seeds"]) == (vd.NOT_RUN, None, None)
    assert claims[4]["outcome"] == vd.NOT_RUN and claims[4]["missing"] == [
        "Fourier-CNN − CNN: small − large", "LC-CNN − CNN: small − large",
    ]  # fmt: skip
    assert [list(c) for c in claims] == [CLAIM_KEYS] * 7
    # claims 3 and 4 with their runs: the same texts
    ran = evaluate(
        summary_with(
            paper_shaped(),
            {"status": "ok", "per_seed": ae_rows()},
            {"status": "ok", "per_seed": pso_rows([0.5] * 3)},
        )
    )
    assert [(c["number"], c["claim"], c["short"], c["source"]) for c in ran] == CLAIM_TEXTS
    assert [c["paper"] for c in ran[2:]] == PAPER_OF_CLAIM[2:]


def test_the_published_numbers_given_are_the_ones_shown():
    published = load_published()
    published["table2"] = [
        {**r, "improvement_pp": 9.99} if r["size"] == "small" else r for r in published["table2"]
    ]
    published["table1"] = [
        {**r, "val_acc": 0.111} if r["size"] == "large" else r for r in published["table1"]
    ]
    claims = evaluate(summary_with(paper_shaped()), published=published)
    assert [v["value"] for v in claims[0]["paper"]["values"]] == [9.99, 9.99, 3.7, 1.64, 1.27, 3.17]
    assert [v["value"] for v in claims[1]["paper"]["values"]] == [0.6423, 0.6337, 0.5914, 0.111, 0.111, 0.111]


# ------------------------------------------------------------------ the engine at its boundaries


def test_region_boundaries_closed_and_open():
    about_half = cl.ABOUT_HALF_REGION
    # closed region: both ends belong to it
    assert about_half.contains(0.4, 0.6) and not about_half.contains(0.3, 0.7)
    assert not about_half.contains(0.39, 0.5) and not about_half.contains(0.5, 0.61)
    # open lower bound ("difference > 0"): an interval starting at 0 is not inside
    assert not vd.POSITIVE.contains(0.0, 1.0) and vd.POSITIVE.contains(0.001, 1.0)
    assert vd.NEGATIVE.contains(-1.0, -0.001) and not vd.NEGATIVE.contains(-1.0, 0.0)
    assert cl.NON_INFERIOR.contains(-0.99, 5.0) and not cl.NON_INFERIOR.contains(-1.0, 5.0)
    assert [r.text(u) for r, u in ((vd.POSITIVE, "pp"), (vd.NEGATIVE, "pp"), (cl.BELOW_ONE, ""),
                                   (about_half, ""), (cl.NON_INFERIOR, "pp"))] == [
        "> 0 pp", "< 0 pp", "< 1", "in [0.4, 0.6]", "> −1 pp",
    ]  # fmt: skip
    assert th.NON_INFERIORITY_MARGIN_PP == 1.0


def test_evidence_dict_shape():
    (evidence,) = vd.judge([vd.Comparison("x", [2, 3, 4])])
    assert evidence.values == (2.0, 3.0, 4.0) and type(evidence.values[0]) is float
    as_dict = evidence.as_dict()
    assert type(as_dict["values"]) is list
    assert list(as_dict) == [
        "label", "values", "mean", "low", "high", "verdict", "unit", "judged", "note", "claimed", "p_wrong",
        "p_holm", "min_detectable",
    ]  # fmt: skip
    assert (as_dict["verdict"], as_dict["claimed"], as_dict["p_holm"]) == (
        vd.SUPPORTED,
        "> 0 pp",
        as_dict["p_wrong"],
    )


def test_interval_with_many_seeds_uses_the_exact_quantile():
    values = [0.0, 1.0] * 16  # n = 32, mean 0.5, s = sqrt(32 * 0.25 / 31); t(0.975, 31) = 2.0395
    mean, low, high = st.interval(values)
    half = 2.039513 * math.sqrt(8 / 31) / math.sqrt(32)
    assert mean == 0.5 and low == pytest.approx(0.5 - half) and high == pytest.approx(0.5 + half)
    # two values: t(0.975, 1) = 12.706, s = |a - b| / sqrt(2)
    mean, low, high = st.interval([1.0, 3.0])
    assert (mean, high) == (2.0, pytest.approx(2.0 + 12.7062 * math.sqrt(2) / math.sqrt(2), rel=1e-5))
    with pytest.raises(ValueError) as caught:
        st.interval([])
    assert str(caught.value) == "no values for an interval"


def test_pairs_use_only_seeds_both_runs_have_with_a_finite_best():
    runs = pd.DataFrame(
        [
            {"size": "small", "activation": "fourier", "seed": 0, "final_val_acc": 0.60},
            {"size": "small", "activation": "fourier", "seed": 1, "final_val_acc": 0.62},
            {"size": "small", "activation": "fourier", "seed": 2, "final_val_acc": float("nan")},
            {"size": "small", "activation": "fourier", "seed": 3, "final_val_acc": None},
            {"size": "small", "activation": "relu", "seed": 1, "final_val_acc": 0.50},
            {"size": "small", "activation": "relu", "seed": 2, "final_val_acc": 0.50},
            {"size": "small", "activation": "relu", "seed": 3, "final_val_acc": 0.50},
            {"size": "small", "activation": "relu", "seed": 5, "final_val_acc": 0.50},
            {"size": "middle", "activation": "fourier", "seed": 1, "final_val_acc": 0.99},
        ]
    )
    (claim1,) = [
        c for c in evaluate({"runs": runs.to_dict(orient="records")}, sizes=["small"]) if c["number"] == 1
    ]
    assert claim1["comparisons"][0]["values"] == [pytest.approx(12.0)]  # seed 1 only
    assert claim1["missing"] == ["small: LC-CNN − CNN"]


def test_preview_reasons_for_early_drops_without_epochs_and_other_rates_of_the_same_length():
    assert pv.preview_reasons({"train": {"lr_boundaries": [10, 20, 30]}}, 3) == [
        "learning-rate drops after epochs [10, 20, 30] (paper: [20, 40, 60] over at least 60 epochs)"
    ]
    ten_times = {"train": {"learning_rates": [1e-2, 1e-3, 1e-4, 1e-5]}}
    assert pv.preview_reasons(ten_times, 3) == [
        "learning rates [0.01, 0.001, 0.0001, 1e-05] (paper: [0.001, 0.0001, 1e-05, 1e-06])"
    ]
    # the paper's rates written differently are the paper's rates
    assert pv.preview_reasons({"train": {"learning_rates": ["1e-3", 0.0001, 1.0e-5, 1e-6]}}, 3) == []


def test_claim4_with_one_seed_shows_the_ratio_without_an_interval():
    claim4 = evaluate(summary_with(paper_shaped(), pso={"status": "ok", "per_seed": pso_rows([0.5])}))[3]
    about_half, lower, _ = claim4["comparisons"]
    assert about_half == {
        "label": "PSO final test acc / RMSProp final val acc: about half",
        "values": [0.5],
        "mean": 0.5,
        "low": None,
        "high": None,
        "verdict": vd.CONSISTENT,
        "unit": "ratio",
        "judged": True,
        "note": "",
        "claimed": "in [0.4, 0.6]",
        "p_wrong": None,
        "p_holm": None,
        "min_detectable": None,
    }
    assert lower["verdict"] == vd.CONSISTENT
    assert (claim4["outcome"], claim4["verdict"], claim4["n_seeds"]) == (
        vd.CONSISTENT,
        vd.PREVIEW_CONSISTENT,
        1,
    )


def test_unknown_sizes_are_named():
    with pytest.raises(ValueError) as caught:
        evaluate(summary_with(paper_shaped()), sizes=["small", "huge"])
    assert str(caught.value) == "unknown sizes ['huge']; choose from ['small', 'middle', 'large']"


# ------------------------------------------------------------------ claims 5-7 on synthetic per-seed numbers


def differences_of(per_size, activations=("fourier", "lc")):
    """``{(size, activation, "relu"): {seed: pp}}`` from ``{size: [pp per seed]}``.

    The same differences for each activation.
    """
    return {
        (size, a, "relu"): dict(enumerate(values)) for size, values in per_size.items() for a in activations
    }


def claim(number, differences, **kwargs):
    (found,) = [
        c for c in cl.evaluate_claims(differences, load_published(), **kwargs) if c["number"] == number
    ]
    return found


def test_claim5_size_trend():
    shrinking = differences_of(
        {"small": [5.0, 5.5, 6.0], "middle": [3.0, 3.4, 3.9], "large": [1.0, 1.2, 1.5]}
    )
    trend = claim(5, shrinking)
    assert trend["outcome"] == vd.SUPPORTED
    assert [c["label"] for c in trend["comparisons"]] == [
        "Fourier-CNN − CNN: small − large", "Fourier-CNN − CNN: middle − large",
        "LC-CNN − CNN: small − large", "LC-CNN − CNN: middle − large",
    ]  # fmt: skip
    assert trend["comparisons"][0]["values"] == pytest.approx([4.0, 4.3, 4.5])
    growing = differences_of({"small": [1.0, 1.2, 1.5], "middle": [3.0, 3.4, 3.9], "large": [5.0, 5.5, 6.0]})
    assert claim(5, growing)["outcome"] == vd.NOT_SUPPORTED
    # small and large only: no middle comparisons; without large: not run
    two_sizes = {k: v for k, v in shrinking.items() if k[0] != "middle"}
    assert len(claim(5, two_sizes, sizes=["small", "large"])["comparisons"]) == 2
    assert (
        claim(5, {k: v for k, v in shrinking.items() if k[0] != "large"}, sizes=["small", "middle"])[
            "outcome"
        ]
        == vd.NOT_RUN
    )


def test_claim6_generalisation_gap():
    test = differences_of({"middle": [2.0, 2.5, 3.0], "large": [1.0, 1.5, 2.0]})
    lower_train = differences_of({"middle": [-3.0, -2.0, -4.0], "large": [-1.0, -0.5, -1.5]})
    gap = claim(6, test, train_eval_differences=lower_train)
    assert gap["outcome"] == vd.SUPPORTED and gap["scope"] is None
    first = gap["comparisons"][:3]
    assert [(c["label"], c["judged"]) for c in first] == [
        ("middle: Fourier-CNN − CNN: gap (train eval − test)", True),
        ("middle: Fourier-CNN − CNN: train eval acc (context)", False),
        ("middle: Fourier-CNN − CNN: test acc (context)", False),
    ]
    assert first[0]["values"] == pytest.approx([-5.0, -4.5, -7.0]) and first[0]["claimed"] == "< 0 pp"
    # higher training accuracy by more than the test gain: a wider gap, refuted
    higher_train = differences_of({"middle": [6.0, 6.5, 7.0], "large": [5.0, 5.5, 6.0]})
    assert claim(6, test, train_eval_differences=higher_train)["outcome"] == vd.NOT_SUPPORTED
    # no eval-mode training accuracy (old histories): not run; only the middle size: scoped
    assert claim(6, test)["outcome"] == vd.NOT_RUN and claim(6, test)["missing"] == [cl.NO_TRAIN_EVAL]
    middle = {k: v for k, v in test.items() if k[0] == "middle"}
    scoped = claim(6, middle, train_eval_differences=lower_train, sizes=["middle"])
    assert scoped["verdict"] == "supported (middle networks only)"
    assert claim(6, test, train_eval_differences=lower_train, sizes=["small"])["outcome"] == vd.NOT_RUN


def test_claim7_non_inferiority_margin():
    # -0.5 pp on average with a tight spread: worse, but not by the 1 pp margin -> supported
    slightly_worse = differences_of({size: [-0.5, -0.4, -0.6] for size in ("small", "middle", "large")})
    assert claim(7, slightly_worse)["outcome"] == vd.SUPPORTED
    assert claim(1, slightly_worse)["outcome"] == vd.NOT_SUPPORTED  # the same numbers refute "better"
    much_worse = differences_of(
        {"small": [2.0, 2.1, 2.2], "middle": [1.0, 1.1, 1.2], "large": [-3.0, -3.2, -2.9]}
    )
    assert claim(7, much_worse)["outcome"] == vd.NOT_SUPPORTED
    assert claim(7, much_worse)["comparisons"][0]["claimed"] == "> −1 pp"
    unclear = differences_of({size: [-2.0, 0.5, 1.0] for size in ("small", "middle", "large")})
    assert claim(7, unclear)["outcome"] == vd.INCONCLUSIVE
    no_large = {k: v for k, v in slightly_worse.items() if k[0] != "large"}
    assert claim(7, no_large)["outcome"] == vd.NOT_RUN
    assert (
        claim(7, no_large, sizes=["small", "middle"])["verdict"]
        == "supported (small and middle networks only)"
    )
