"""Claims engine: intervals, region verdicts, claims 1-4, the sizes scope and preview labels.

The claims are judged as ``trainact aggregate`` judges them: on the paired differences of
``aggregate.summarize_claims`` (:func:`evaluate` below)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from trainact import aggregate as agg
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


def evaluate(summary, published=None, **kwargs):
    """The claims on ``summary``'s runs and Section 5 parts, as ``trainact aggregate`` judges them."""
    return agg.summarize_claims(
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


def test_interval_uses_student_t():
    mean, low, high = cl.interval([1.0, 2.0, 3.0], 2.0)
    assert mean == 2.0 and high - mean == pytest.approx(4.303 * 1.0 / math.sqrt(3))
    assert cl.interval([1.5], 2.0) == (1.5, -0.5, 3.5)
    assert cl.region_verdict(0.0, 1.0, (0.0, math.inf), open_low=True) == cl.INCONCLUSIVE
    assert cl.region_verdict(-1.0, 0.0, (0.0, math.inf), open_low=True) == cl.NOT_SUPPORTED
    with pytest.raises(ValueError, match="no values"):
        cl.interval([], 2.0)


def test_claims_supported_on_the_paper_numbers():
    claims = evaluate(summary_with(paper_shaped()))
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
    claims = evaluate(summary_with(values))
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
    claims = evaluate(summary)
    assert [c["verdict"] for c in claims[2:]] == [cl.SUPPORTED, cl.SUPPORTED]
    assert [c["judged"] for c in claims[2]["comparisons"]] == [True, False, False]
    assert claims[3]["comparisons"][0]["note"] == "claimed region [0.4, 0.6]"
    ae_rows = [{**r, "diff_best_val_acc_pp": -d} for r, d in zip(ae_rows, (2.0, 2.5, 1.8))]
    pso_rows = [{"ratio": r} for r in (0.90, 0.92, 0.91)]
    summary = summary_with(base, {"status": "ok", "per_seed": ae_rows}, {"status": "ok", "per_seed": pso_rows})
    assert verdicts(summary)[2:] == [cl.NOT_SUPPORTED, cl.NOT_SUPPORTED]
    pso_rows = [{"ratio": r} for r in (0.45, 0.62)]  # interval straddles 0.6; two seeds: a preview
    claim4 = evaluate(summary_with(base, pso={"status": "ok", "per_seed": pso_rows}))[3]
    assert claim4["outcome"] == cl.INCONCLUSIVE and claim4["verdict"] == cl.PREVIEW_INCONCLUSIVE
    assert claim4["preview_reasons"] == ["2 seeds (< 3)"]


# ------------------------------------------------------------------------------ sizes scope


def test_missing_size_makes_a_claim_not_run():
    values = {key: v for key, v in paper_shaped().items() if key[0] != "large"}
    claims = evaluate(summary_with(values))
    assert [c["verdict"] for c in claims[:2]] == [cl.NOT_RUN, cl.NOT_RUN]
    assert "large: Fourier-CNN − CNN" in claims[0]["missing"]
    assert claims[0]["n_seeds"] is None and claims[0]["preview"] is False


def test_claims_on_the_small_networks_only():
    values = {key: v for key, v in paper_shaped().items() if key[0] == "small"}
    claims = evaluate(summary_with(values), sizes=["small"])
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
    claims = evaluate(summary_with(values), sizes=["middle"])
    assert claims[0]["verdict"] == "supported (middle networks only)"
    assert claims[1]["verdict"] == cl.NOT_RUN and len(claims[1]["missing"]) == 4
    assert cl.scope_text(["small", "large"]) == "small and large networks only"
    # claim 2 is about small and large networks: with small and middle its scope is the small ones
    values = {key: v for key, v in paper_shaped().items() if key[0] != "large"}
    claims = evaluate(summary_with(values), sizes=["small", "middle"])
    assert claims[0]["verdict"] == "supported (small and middle networks only)"
    assert claims[1]["verdict"] == "supported (small networks only)"
    values = {key: v for key, v in paper_shaped().items() if key[0] != "middle"}
    claims = evaluate(summary_with(values), sizes=["small", "large"])
    assert claims[0]["verdict"] == "supported (small and large networks only)" and claims[1]["verdict"] == cl.SUPPORTED
    assert cl.scope_text(["large", "small", "middle"]) is None
    with pytest.raises(ValueError, match="huge"):
        evaluate(summary_with(values), sizes=["huge"])


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
    # a validation split held out of the training images leaves fewer to train on
    assert cl.preview_reasons({"dataset": {"train_per_class": None, "validation_per_class": 500}}, 3) == [
        "45,000 training images, 5,000 held out for validation (paper: 50,000)"
    ]
    quick = {"train_per_class": 1000, "validation_per_class": 100, "synthetic": None}
    assert cl.preview_reasons({"dataset": quick}, 3) == [
        "9,000 training images, 1,000 held out for validation (paper: 50,000)"
    ]
    with_split = {**smoke["dataset"], "validation_per_class": 5}
    assert cl.preview_reasons({"dataset": with_split}, 3) == [
        "synthetic data, 250 training images, 50 held out for validation (paper: CIFAR-10, 50,000)"
    ]
    with pytest.raises(ValueError, match="mapping"):
        cl.preview_reasons(["train"], 3)


def test_verdict_labels_with_one_seed_and_with_three():
    # three seeds, no settings: plain verdicts
    three = evaluate(summary_with(paper_shaped()), settings={})
    assert three[0]["verdict"] == cl.SUPPORTED and three[0]["preview_reasons"] == []
    # one seed: small +5.09/+4.23, middle +3.70/+1.64, large +1.27/+3.17: 1.64 and 1.27 < the 2 pp margin
    values = {key: [row["val_acc"]] for key, row in PUBLISHED.items()}
    one = evaluate(summary_with(values))[0]
    assert (one["outcome"], one["verdict"]) == (cl.INCONCLUSIVE, "preview: inconclusive")
    assert one["preview"] is True and one["preview_reasons"] == ["1 seed (< 3)"] and one["n_seeds"] == 1
    for size in ("middle", "large"):
        for activation in ("fourier", "lc"):
            values[(size, activation)] = [values[(size, "relu")][0] + 0.03]
    one = evaluate(summary_with(values))[0]
    assert (one["outcome"], one["verdict"]) == (cl.SUPPORTED, "preview: consistent with the claim")
    values[("small", "fourier")] = [values[("small", "relu")][0] - 0.03]
    one = evaluate(summary_with(values))[0]
    assert (one["outcome"], one["verdict"]) == (cl.NOT_SUPPORTED, "preview: inconsistent with the claim")
    # three seeds but the quick schedule: still a preview
    quick = evaluate(summary_with(paper_shaped()), settings=QUICK_LIKE)[0]
    assert quick["verdict"] == cl.PREVIEW_CONSISTENT
    assert quick["preview_reasons"] == [QUICK_SCHEDULE, "3,000 training images (paper: 50,000)"]
    # no preview label is ever "supported" / "not supported"
    assert all(not label.endswith("supported") for label in cl.PREVIEW_LABELS.values())
    assert cl.verdict_label(cl.NOT_RUN, True, "small networks only") == cl.NOT_RUN


def test_claims_module_is_torch_free():
    from trainact.sourcegraph import imported_names, trainact_closure

    names = {n for m in trainact_closure("trainact.claims") for n in imported_names(m)}
    assert not {n.split(".")[0] for n in names} & {"torch", "jinja2", "matplotlib"}
    assert "trainact.paper_report" not in trainact_closure("trainact.claims")
    # pure over aggregate's numbers: aggregate runs the check, so claims must not import it back
    assert "trainact.aggregate" not in trainact_closure("trainact.claims")
    assert "trainact.claims" in trainact_closure("trainact.aggregate")


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
        "Autoencoder pretraining improves the middle Fourier-CNN (higher best validation accuracy).",
        "Autoencoder pretraining improves the middle Fourier-CNN",
        "Sections 5.1 and 6",
    ),
    (
        4,
        "PSO training reaches about half of the accuracy that BP (RMSProp) reaches (middle CNN).",
        "PSO reaches about half of RMSProp's accuracy (middle CNN)",
        "Sections 5.2 and 6",
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
]
CLAIM_KEYS = [
    "number", "claim", "short", "source", "paper", "scope", "comparisons", "missing",
    "n_seeds", "preview", "preview_reasons", "outcome", "verdict",
]  # fmt: skip


def test_each_claim_states_its_text_source_and_the_papers_numbers():
    summary = summary_with(paper_shaped())
    del summary["autoencoder"], summary["pso"]  # an old summary without the Section 5 parts: not run
    claims = evaluate(summary)
    assert [list(c) for c in claims] == [CLAIM_KEYS] * 4
    assert [(c["number"], c["claim"], c["short"], c["source"]) for c in claims] == CLAIM_TEXTS
    assert [c["paper"] for c in claims] == PAPER_OF_CLAIM
    assert [c["comparisons"][0]["label"] if c["comparisons"] else None for c in claims] == [
        "small: Fourier-CNN − CNN", "small: Fourier-CNN − LC-CNN", None, None,
    ]  # fmt: skip
    assert [c["label"] for c in claims[1]["comparisons"]] == [
        "small: Fourier-CNN − LC-CNN",
        "small: Fourier-CNN − CNN",
        "large: LC-CNN − Fourier-CNN",
        "large: LC-CNN − CNN",
    ]
    assert [c["outcome"] for c in claims] == [cl.SUPPORTED, cl.SUPPORTED, cl.NOT_RUN, cl.NOT_RUN]
    assert [c["n_seeds"] for c in claims] == [3, 3, None, None]
    assert [c["missing"] for c in claims] == [[], [], [], []]


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
    assert (claims[1]["outcome"], claims[1]["scope"], claims[1]["n_seeds"]) == (cl.NOT_RUN, None, None)
    assert [list(c) for c in claims] == [CLAIM_KEYS] * 4
    # claims 3 and 4 with their runs: the same texts
    ae_rows = [{"diff_best_val_acc_pp": 2.0, "diff_first_val_acc_pp": 1.0, "diff_final_val_acc_pp": 0.5}] * 3
    pso_rows = [{"ratio": 0.5}] * 3
    ran = evaluate(
        summary_with(paper_shaped(), {"status": "ok", "per_seed": ae_rows}, {"status": "ok", "per_seed": pso_rows})
    )
    assert [(c["number"], c["claim"], c["short"], c["source"]) for c in ran] == CLAIM_TEXTS
    assert [c["paper"] for c in ran[2:]] == PAPER_OF_CLAIM[2:]
    assert [c["label"] for c in ran[2]["comparisons"]] == [
        "best val acc, pretrained − not pretrained",
        "epoch-1 val acc (context)",
        "final val acc (context)",
    ]


def test_the_published_numbers_given_are_the_ones_shown():
    published = load_published()
    published["table2"] = [{**r, "improvement_pp": 9.99} if r["size"] == "small" else r for r in published["table2"]]
    published["table1"] = [{**r, "val_acc": 0.111} if r["size"] == "large" else r for r in published["table1"]]
    claims = evaluate(summary_with(paper_shaped()), published=published)
    assert [v["value"] for v in claims[0]["paper"]["values"]] == [9.99, 9.99, 3.7, 1.64, 1.27, 3.17]
    assert [v["value"] for v in claims[1]["paper"]["values"]] == [0.6423, 0.6337, 0.5914, 0.111, 0.111, 0.111]


# ------------------------------------------------------------------ the engine at its boundaries


def test_region_verdict_boundaries_closed_and_open():
    about_half = (0.4, 0.6)
    # closed region: both ends belong to it
    assert cl.region_verdict(0.4, 0.6, about_half) == cl.SUPPORTED
    assert cl.region_verdict(0.0, 1.0, (0.0, math.inf)) == cl.SUPPORTED  # open_low is False by default
    # touching the region from outside is not "entirely outside"
    assert cl.region_verdict(0.3, 0.4, about_half) == cl.INCONCLUSIVE
    assert cl.region_verdict(0.6, 0.7, about_half) == cl.INCONCLUSIVE
    assert cl.region_verdict(0.2, 0.39, about_half) == cl.NOT_SUPPORTED
    assert cl.region_verdict(0.61, 0.7, about_half) == cl.NOT_SUPPORTED
    assert cl.region_verdict(0.3, 0.7, about_half) == cl.INCONCLUSIVE
    # open lower bound ("difference > 0"): an interval starting at 0 is not inside, one ending at 0 is outside
    assert cl.region_verdict(0.0, 1.0, (0.0, math.inf), open_low=True) == cl.INCONCLUSIVE
    assert cl.region_verdict(0.001, 1.0, (0.0, math.inf), open_low=True) == cl.SUPPORTED
    assert cl.region_verdict(-1.0, 0.0, (0.0, math.inf), open_low=True) == cl.NOT_SUPPORTED


def test_positive_evidence_of_one_seed_uses_the_two_point_margin():
    # one seed of +2 pp: interval [0, 4]; "difference > 0" needs low > 0, so inconclusive
    evidence = cl.positive_evidence("x", [2])
    assert (evidence.mean, evidence.low, evidence.high) == (2.0, 0.0, 4.0)
    assert evidence.values == (2.0,) and type(evidence.values[0]) is float
    assert (evidence.verdict, evidence.unit, evidence.judged, evidence.note) == (cl.INCONCLUSIVE, "pp", True, "")
    assert cl.positive_evidence("x", [2.5]).verdict == cl.SUPPORTED
    assert cl.positive_evidence("x", [-2.0]).verdict == cl.NOT_SUPPORTED  # interval [-4, 0]
    assert cl.positive_evidence("x", [3.0], judged=False).judged is False
    as_dict = evidence.as_dict()
    assert as_dict["values"] == [2.0] and type(as_dict["values"]) is list
    assert list(as_dict) == ["label", "values", "mean", "low", "high", "verdict", "unit", "judged", "note"]


def test_interval_beyond_thirty_degrees_of_freedom_uses_the_value_at_thirty():
    values = [0.0, 1.0] * 16  # n = 32, mean 0.5, s = sqrt(32 * 0.25 / 31)
    mean, low, high = cl.interval(values, 2.0)
    half = 2.042 * math.sqrt(8 / 31) / math.sqrt(32)
    assert mean == 0.5 and low == pytest.approx(0.5 - half) and high == pytest.approx(0.5 + half)
    # two values: t(0.975, 1) = 12.706, s = |a - b| / sqrt(2)
    mean, low, high = cl.interval([1.0, 3.0], 2.0)
    assert (mean, high) == (2.0, pytest.approx(2.0 + 12.706 * math.sqrt(2) / math.sqrt(2)))
    with pytest.raises(ValueError) as caught:
        cl.interval([], 2.0)
    assert str(caught.value) == "no values for an interval"


def test_pairs_use_only_seeds_both_runs_have_with_a_finite_best():
    runs = pd.DataFrame(
        [
            {"size": "small", "activation": "fourier", "seed": 0, "best_val_acc": 0.60},
            {"size": "small", "activation": "fourier", "seed": 1, "best_val_acc": 0.62},
            {"size": "small", "activation": "fourier", "seed": 2, "best_val_acc": float("nan")},
            {"size": "small", "activation": "fourier", "seed": 3, "best_val_acc": None},
            {"size": "small", "activation": "relu", "seed": 1, "best_val_acc": 0.50},
            {"size": "small", "activation": "relu", "seed": 2, "best_val_acc": 0.50},
            {"size": "small", "activation": "relu", "seed": 3, "best_val_acc": 0.50},
            {"size": "small", "activation": "relu", "seed": 5, "best_val_acc": 0.50},
            {"size": "middle", "activation": "fourier", "seed": 1, "best_val_acc": 0.99},
        ]
    )
    (claim1,) = [c for c in evaluate({"runs": runs.to_dict(orient="records")}, sizes=["small"]) if c["number"] == 1]
    assert claim1["comparisons"][0]["values"] == [pytest.approx(12.0)]  # seed 1 only
    assert claim1["missing"] == ["small: LC-CNN − CNN"]


def test_preview_reasons_for_early_drops_without_epochs_and_other_rates_of_the_same_length():
    assert cl.preview_reasons({"train": {"lr_boundaries": [10, 20, 30]}}, 3) == [
        "learning-rate drops after epochs [10, 20, 30] (paper: [20, 40, 60] over at least 60 epochs)"
    ]
    ten_times = {"train": {"learning_rates": [1e-2, 1e-3, 1e-4, 1e-5]}}
    assert cl.preview_reasons(ten_times, 3) == [
        "learning rates [0.01, 0.001, 0.0001, 1e-05] (paper: [0.001, 0.0001, 1e-05, 1e-06])"
    ]
    # the paper's rates written differently are the paper's rates
    assert cl.preview_reasons({"train": {"learning_rates": ["1e-3", 0.0001, 1.0e-5, 1e-6]}}, 3) == []


def test_claim4_with_one_seed_shows_the_ratio_and_its_assumed_margin():
    claim4 = evaluate(summary_with(paper_shaped(), pso={"status": "ok", "per_seed": [{"ratio": 0.5}]}))[3]
    (ratio,) = claim4["comparisons"]
    assert ratio == {
        "label": "PSO best test acc / RMSProp best val acc",
        "values": [0.5],
        "mean": 0.5,
        "low": pytest.approx(0.45),
        "high": pytest.approx(0.55),
        "verdict": cl.SUPPORTED,
        "unit": "ratio",
        "judged": True,
        "note": "claimed region [0.4, 0.6]",
    }
    assert (claim4["outcome"], claim4["verdict"], claim4["n_seeds"]) == (cl.SUPPORTED, cl.PREVIEW_CONSISTENT, 1)


def test_unknown_sizes_are_named():
    with pytest.raises(ValueError) as caught:
        evaluate(summary_with(paper_shaped()), sizes=["small", "huge"])
    assert str(caught.value) == "unknown sizes ['huge']; choose from ['small', 'middle', 'large']"
