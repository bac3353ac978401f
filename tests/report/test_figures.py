"""Figures: plotted data equals the aggregated means, consistent colours, valid PNG/PDF files."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np
import pytest
from fixtures_results import EPOCHS, build_results, fourier_layer, history_frame, lc_layer

from trainact.analysis.aggregate import aggregate
from trainact.names import ACTIVATIONS
from trainact.report import figure_params as fp
from trainact.report import figures as fg
from trainact.report import plot_activations as pa
from trainact.report import plot_health as ph
from trainact.report import plot_section5 as p5
from trainact.report import plot_style as sty
from trainact.report import structure_table as stt
from trainact.report.page import MAX_FIGURE_HEIGHT_IN, MIN_FONT_PT, TEXT_WIDTH_IN

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def bests_by_seed(size, activation, seed):
    """Different values per seed so that mean, min and max differ."""
    base = {"relu": 0.55, "fourier": 0.60, "lc": 0.58}[activation] + {
        "small": 0.0,
        "middle": 0.03,
        "large": 0.05,
    }[size]
    spread = {0: 0.0, 1: 0.03, 2: 0.012}[seed]
    return {
        "train_acc": base + 0.1 + spread,
        "val_acc": base + spread,
        "train_loss": 0.9 - spread,
        "val_loss": 1.2 - spread,
    }


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def line(ax, label):
    (found,) = [ln for ln in ax.get_lines() if ln.get_label() == label]
    return found


def expected_curve(size, activation, seeds, column):
    values = np.array([history_frame(bests_by_seed(size, activation, s))[column].to_numpy() for s in seeds])
    return values.mean(axis=0), values.min(axis=0), values.max(axis=0)


def test_curve_figures_plot_the_mean_over_seeds(tmp_path):
    seeds = (0, 1, 2)
    results = build_results(tmp_path / "out", sizes=["small"], seeds=seeds, bests=bests_by_seed)
    params = fp.FigureParams.from_dict({"sizes": ["small"], "seeds": list(seeds), "figures": ["curves"]})
    figures = fg.draw_group("curves", results, params)
    assert sorted(figures) == ["fig4", "fig7"]  # small: validation -> 4, training -> 7
    for stem, split in (("fig4", "val"), ("fig7", "train")):
        ax_acc, ax_loss = figures[stem].axes
        for activation in ACTIVATIONS:
            for ax, metric in ((ax_acc, "acc"), (ax_loss, "loss")):
                plotted = line(ax, sty.LABELS[activation])
                mean, low, high = expected_curve("small", activation, seeds, f"{split}_{metric}")
                np.testing.assert_allclose(plotted.get_xdata(), np.arange(1, EPOCHS + 1))
                np.testing.assert_allclose(plotted.get_ydata(), mean)
                assert plotted.get_color() == sty.COLORS[activation]
        # the min-max band of the first activation drawn (ReLU) spans the seeds
        band = ax_acc.collections[0].get_paths()[0].vertices
        _, low, high = expected_curve("small", "relu", seeds, f"{split}_acc")
        assert band[:, 1].min() == pytest.approx(low.min()) and band[:, 1].max() == pytest.approx(high.max())
        assert ax_acc.get_xlabel() == "epoch" and ax_acc.get_ylabel() == "accuracy"
        assert "small" in figures[stem]._suptitle.get_text()


def test_diverged_epochs_are_not_plotted(tmp_path):
    results = build_results(
        tmp_path / "out",
        sizes=["small"],
        activations=["relu"],
        seeds=[0, 1],
        bests=bests_by_seed,
        diverge={("small", "relu", 1): 4},
    )
    curves = fg.train_curves(results, "small", "relu", [0, 1])
    seed0 = history_frame(bests_by_seed("small", "relu", 0))["val_acc"].to_numpy()
    seed1 = history_frame(bests_by_seed("small", "relu", 1))["val_acc"].to_numpy()
    expected = np.concatenate([(seed0[:3] + seed1[:3]) / 2, seed0[3:]])  # seed 1 stops after epoch 3
    np.testing.assert_allclose(curves["val_acc_mean"].to_numpy(), expected)
    assert list(curves["n"]) == [2, 2, 2, 1, 1, 1]


def test_autoencoder_and_pso_figures(tmp_path):
    seeds = (0, 1)
    results = build_results(
        tmp_path / "out",
        sizes=["middle"],
        activations=["relu", "fourier"],
        seeds=seeds,
        bests=bests_by_seed,
        autoencoder_seeds=seeds,
        pso_seeds=seeds,
    )
    params = fp.FigureParams.from_dict(
        {
            "sizes": ["middle"],
            "activations": ["relu", "fourier"],
            "seeds": list(seeds),
            "autoencoder_seeds": list(seeds),
            "pso_seeds": list(seeds),
        }
    )
    fig8 = fg.draw_group("autoencoder", results, params)["fig8"]
    ax_acc, ax_rec = fig8.axes
    baseline_mean, _, _ = expected_curve("middle", "fourier", seeds, "val_acc")
    np.testing.assert_allclose(line(ax_acc, "Fourier-CNN, no pretraining").get_ydata(), baseline_mean)
    np.testing.assert_allclose(
        line(ax_acc, "Fourier-CNN, autoencoder pretraining").get_ydata(), baseline_mean + 0.02
    )
    # the fixture's reconstruction loss is 0.1/(stage+1) + 0.05/epoch for every seed
    for stage in range(3):
        np.testing.assert_allclose(
            line(ax_rec, f"stage {stage}").get_ydata(), [0.1 / (stage + 1) + 0.05 / e for e in (1, 2, 3)]
        )

    with pytest.raises(FileNotFoundError, match="summary.json"):  # Figure 9 reads aggregate's summary
        fg.draw_group("pso", results, params)
    aggregate(results, results / "tables", ["middle"], ["relu", "fourier"], seeds, seeds, seeds)
    fig9 = fg.draw_group("pso", results, params)["fig9"]
    ax, top = fig9.axes
    reference_best = np.mean([bests_by_seed("middle", "relu", s)["val_acc"] for s in seeds])
    summary = json.loads((results / "tables" / "summary.json").read_text())
    assert summary["pso"]["rmsprop_best_val_acc"]["mean"] == pytest.approx(reference_best)
    horizontal = [ln for ln in ax.get_lines() if ln.get_label().startswith("RMSProp: best")]
    assert len(horizontal) == 1 and np.allclose(horizontal[0].get_ydata(), reference_best)
    # the paper's claim as a band (0.4-0.6 of RMSProp's best), and chance
    (claim,) = [p for p in ax.patches if p.get_label().startswith("'about half'")]
    np.testing.assert_allclose(
        [claim.get_y(), claim.get_y() + claim.get_height()], [0.4 * reference_best, 0.6 * reference_best]
    )
    np.testing.assert_allclose(line(ax, "chance (10 classes)").get_ydata(), 0.1)
    test_line = line(ax, "PSO: $P_g$ test accuracy")
    targets = [0.5 * bests_by_seed("middle", "relu", s)["val_acc"] for s in seeds]
    np.testing.assert_allclose(
        test_line.get_ydata(), [np.mean(targets) - 0.01 * (5 - g) for g in range(1, 6)]
    )
    reference_mean, _, _ = expected_curve("middle", "relu", seeds, "val_acc")
    np.testing.assert_allclose(top.get_lines()[0].get_ydata(), reference_mean)
    assert top.get_xlabel() == "RMSProp epoch" and ax.get_xlabel() == "PSO generation"


def test_fig9_refuses_a_summary_of_other_pso_seeds(tmp_path):
    results = build_results(
        tmp_path / "out", sizes=["middle"], activations=["relu"], seeds=[0, 1], pso_seeds=[0, 1]
    )
    aggregate(results, results / "tables", ["middle"], ["relu"], [0, 1], pso_seeds=[0])
    params = fp.FigureParams.from_dict(
        {"sizes": ["middle"], "activations": ["relu"], "seeds": [0, 1], "pso_seeds": [0, 1]}
    )
    with pytest.raises(ValueError, match="PSO seeds"):
        fg.draw_group("pso", results, params)


def test_layer_curves_follow_the_formulas():
    x = np.linspace(-3, 3, 7)
    layer = fourier_layer("stages.0.1")
    p = layer["params"]
    expected = p["A"] + sum(
        p["a"][n - 1] * np.cos(n * p["omega"] * x) + p["b"][n - 1] * np.sin(n * p["omega"] * x)
        for n in range(1, 6)
    )
    np.testing.assert_allclose(pa.layer_curves(layer, x), expected[None], atol=1e-12)
    # as trainact.training.train writes it: kind from the class name, A/omega as 1-element lists
    saved = {"name": "x", "kind": "fourier", "params": {**p, "A": [p["A"]], "omega": [p["omega"]]}}
    np.testing.assert_allclose(pa.layer_curves(saved, x), expected[None], atol=1e-12)

    per_channel = fourier_layer("head.2", channels=3)
    curves = pa.layer_curves(per_channel, x)
    assert curves.shape == (3, 7)
    c = per_channel["params"]
    channel2 = c["A"][2] + sum(
        c["a"][2][n - 1] * np.cos(n * 0.8 * x) + c["b"][2][n - 1] * np.sin(n * 0.8 * x) for n in range(1, 6)
    )
    np.testing.assert_allclose(curves[2], channel2, atol=1e-12)

    lc = lc_layer("stages.0.1")
    w = lc["params"]["weights"]
    mix = (w[0] * np.maximum(x, 0) + w[1] / (1 + np.exp(-x)) + w[2] * np.tanh(x) + w[3] * x) / sum(w)
    np.testing.assert_allclose(pa.layer_curves(lc, x), mix[None], atol=1e-12)
    # trainact.training.train's "linearcombination" kind without candidates/eps: the paper's candidates
    bare = {"name": "y", "kind": "linearcombination", "params": {"weights": w}}
    np.testing.assert_allclose(pa.layer_curves(bare, x), mix[None], atol=1e-12)
    with pytest.raises(ValueError, match="unknown kind"):
        pa.layer_curves({"name": "z", "kind": "swish", "params": {}}, x)


def test_activation_figure_draws_mean_over_channels_and_seeds(tmp_path):
    results = build_results(tmp_path / "out", sizes=["small", "large"], seeds=[0, 1])
    params = fp.FigureParams.from_dict(
        {"sizes": ["small", "large"], "seeds": [0, 1], "figures": ["activations"]}
    )
    fig = fg.draw_group("activations", results, params)["activations"]
    axes = np.array(fig.axes).reshape(2, 4)  # rows = size, columns = layer
    assert axes[1, 3].get_title() == "large: head.2"
    x = np.linspace(-4, 4, 401)
    head = pa.layer_curves(fourier_layer("head.2", channels=3), x)
    np.testing.assert_allclose(line(axes[0, 3], "Fourier-CNN").get_ydata(), head.mean(axis=0))
    np.testing.assert_allclose(line(axes[0, 3], "CNN (ReLU)").get_ydata(), np.maximum(x, 0))
    np.testing.assert_allclose(line(axes[1, 0], "LC-CNN").get_ydata(), pa.layer_curves(lc_layer("s"), x)[0])


def test_missing_activations_of_every_seed_is_an_error(tmp_path):
    results = build_results(tmp_path / "out", sizes=["small"], activations=["lc"], seeds=[0])
    (results / "train" / "small-lc" / "seed0" / "activations.json").unlink()
    with pytest.raises(FileNotFoundError, match="small-lc"):
        fg.load_activation_documents(results, ["small"], ["lc"], [0])


def fake_describe(size, model_cfg=None, activation="relu"):
    """Stand-in for trainact.nn.models.describe: a two-layer network."""
    width = {"small": 16, "large": 48}[size]
    act_params = {"relu": 0, "fourier": 12, "lc": 4}[activation]
    act_type = {"relu": "ReLU()", "fourier": "Fourier(rank=5)", "lc": "LinearCombination()"}[activation]
    return [
        {
            "layer": "stages.0.0",
            "type": "Conv2d(3, 16)",
            "output_shape": (width, 32, 32),
            "params": 28 * width,
        },
        {"layer": "stages.0.1", "type": act_type, "output_shape": (width, 32, 32), "params": act_params},
        {"layer": "head.0", "type": "Linear(x, 10)", "output_shape": (10,), "params": 10 * width + 10},
    ]


def test_structure_figure_from_describe(monkeypatch, tmp_path):
    import trainact.nn.models

    monkeypatch.setattr(trainact.nn.models, "describe", fake_describe)
    params = fp.FigureParams.from_dict(
        {"sizes": ["small", "large"], "activations": ["relu", "lc"], "figures": ["structure"]}
    )
    descriptions = {
        s: {a: fake_describe(s, activation=a) for a in ("relu", "lc")} for s in ("small", "large")
    }
    header, rows = stt.structure_table(descriptions)
    assert header == ["layer", "type", "small output", "large output", "small params", "large params"]
    assert rows == [
        ["stages.0.0", "Conv2d", "16×32×32", "48×32×32", "448", "1344"],
        ["stages.0.1", "ReLU / LinearCombination", "16×32×32", "48×32×32", "0 / 4", "0 / 4"],
        ["head.0", "Linear", "10", "10", "170", "490"],
        ["total", "CNN", "", "", "618", "1834"],  # one total per network
        ["total", "LC-CNN", "", "", "622", "1838"],
    ]
    # the table the report prints is the file the figures rule writes, read back as it was
    path = stt.write_structure_table(descriptions, tmp_path / "layers.csv")
    assert stt.read_structure_table(path) == (header, rows)
    # the diagram: drawn for the report's full text width, no text under 8 pt, no table in it
    fig = fg.draw_group("structure", None, params)["structure"]
    assert fig.get_figwidth() == pytest.approx(TEXT_WIDTH_IN)
    assert fig.get_figheight() <= MAX_FIGURE_HEIGHT_IN  # printed at scale 1 (not shrunk to fit the page)
    texts = [t for t in fig.findobj(plt.Text) if t.get_text()]
    assert min(t.get_fontsize() for t in texts) >= MIN_FONT_PT
    assert not any(ax.tables for ax in fig.axes)
    boxes = [t for t in fig.axes[0].texts if t.get_text()]  # (the arrows are empty annotations)
    assert [t.get_text() for t in boxes] == [
        "input\n3×32×32",
        "stages.0\nConv2d\nact\nout (16/48)×32×32",
        "head\nLinear\nout 10",
    ]
    assert "act: the activation, ReLU (CNN) / LinearCombination (LC-CNN)" in fig.texts[0].get_text()
    # every box and the title inside the figure, no two overlapping
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    extents = [t.get_bbox_patch().get_window_extent(renderer) for t in boxes] + [
        fig.texts[0].get_window_extent(renderer)
    ]
    width, height = fig.bbox.width, fig.bbox.height
    assert all(e.x0 >= 0 and e.y0 >= 0 and e.x1 <= width and e.y1 <= height for e in extents)
    assert not any(a.overlaps(b) for i, a in enumerate(extents) for b in extents[i + 1 :])
    plt.close(fig)


def test_structure_table_of_the_real_models():
    from trainact.nn.models import build_model, describe, parameter_count

    descriptions = {"small": {a: describe("small", {}, activation=a) for a in ("relu", "fourier")}}
    _, rows = stt.structure_table(descriptions)
    expected = [parameter_count(build_model("small", a, {"impl": "reference"})) for a in ("relu", "fourier")]
    assert [row[-1] for row in rows[-2:]] == [str(n) for n in expected]
    assert [row[:2] for row in rows[-2:]] == [["total", "CNN"], ["total", "Fourier-CNN"]]


def test_make_figures_writes_valid_png_and_pdf(tmp_path, monkeypatch):
    import trainact.nn.models

    monkeypatch.setattr(trainact.nn.models, "describe", fake_describe)
    monkeypatch.setattr(sty, "DPI", 40)  # small PNGs: this test checks files, not looks
    results = build_results(tmp_path / "out", sizes=["small"], activations=["relu", "lc"], seeds=[0])
    params = fp.FigureParams.from_dict({"sizes": ["small"], "activations": ["relu", "lc"], "seeds": [0]})
    out = tmp_path / "figures"
    written = fg.make_figures(results, out, params, progress=False)
    names = sorted(p.name for p in written)
    assert names == sorted(fp.output_files(params) + fp.table_files(params))
    assert names == sorted(
        [
            f"{stem}.{ext}"
            for stem in ("fig4", "fig7", "activations", "activation_health", "structure")
            for ext in ("png", "pdf")
        ]
        + ["structure_layers.csv"]
    )
    table = out / "structure_layers.csv"
    assert stt.read_structure_table(table)[1][0] == ["stages.0.0", "Conv2d", "16×32×32", "448"]
    for path in [p for p in written if p != table]:
        head = path.read_bytes()[:8]
        assert head == PNG_MAGIC if path.suffix == ".png" else head.startswith(b"%PDF-"), path
    assert not list(out.glob(".*"))  # no temporary files left


def test_saved_pdf_carries_no_creation_date_whatever_the_clock(tmp_path, monkeypatch):
    """trainact.report.plot_style.save_figure strips the PDF's creation date (the figures the report includes
    must be byte-for-byte reproducible). Two saves at clocks 63 years apart (SOURCE_DATE_EPOCH, which
    matplotlib stamps when set) write the same bytes; with the variable unset (the wall clock) there
    is no /CreationDate either. The control shows the clock does reach a plain savefig's bytes, so the
    check cannot pass by saving twice within one second."""
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([1, 2], [3, 4])
    saved = {}
    for epoch in ("0", "2000000000"):
        monkeypatch.setenv("SOURCE_DATE_EPOCH", epoch)
        pdf = next(p for p in sty.save_figure(fig, tmp_path / epoch, "x") if p.suffix == ".pdf")
        fig.savefig(tmp_path / f"control-{epoch}.pdf", format="pdf")
        saved[epoch] = pdf.read_bytes()
        assert [p.name for p in sty.save_figure(fig, tmp_path / f"names-{epoch}", "x")] == ["x.png", "x.pdf"]
    control = [(tmp_path / f"control-{e}.pdf").read_bytes() for e in ("0", "2000000000")]
    assert control[0] != control[1] and b"/CreationDate" in control[0]  # the clock is in a plain PDF
    assert saved["0"] == saved["2000000000"]
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    pdf = next(p for p in sty.save_figure(fig, tmp_path / "now", "x") if p.suffix == ".pdf")
    assert b"/CreationDate" not in pdf.read_bytes() and b"/CreationDate" not in saved["0"]
    plt.close(fig)


def test_output_files_follow_the_params():
    params = {"sizes": ["middle", "large"], "activations": ["relu"], "seeds": [0], "pso_seeds": [0]}
    assert fp.output_files(params) == [
        f"{stem}.{ext}"
        for stem in ("fig2", "fig3", "fig5", "fig6", "fig9", "structure")
        for ext in ("png", "pdf")
    ]
    only = fp.output_files({**params, "figures": ["pso"]})
    assert only == ["fig9.png", "fig9.pdf"]
    assert (
        fp.table_files(params) == ["structure_layers.csv"]
        and fp.table_files({**params, "figures": ["pso"]}) == []
    )


@pytest.mark.parametrize(
    "params, message",
    [
        ({"sizes": ["tiny"]}, "tiny"),
        ({"figures": ["fig10"]}, "fig10"),
        ({"colour": "red"}, "colour"),
        ({"activation_range": [2, 1]}, "activation_range"),
        ({"seeds": []}, "no seeds"),
    ],
)
def test_bad_params_are_named(params, message):
    with pytest.raises(ValueError, match=message):
        fp.FigureParams.from_dict(params)


def test_cli_writes_the_requested_group(tmp_path):
    from trainact.cli import main

    results = build_results(tmp_path / "out", sizes=["small"], activations=["relu"], seeds=[0])
    out = tmp_path / "figures"
    params = '{"sizes": ["small"], "activations": ["relu"], "seeds": [0], "figures": ["curves"]}'
    assert (
        main(
            ["figures", "--results", str(results), "--out-dir", str(out), "--params", params, "--no-progress"]
        )
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == ["fig4.pdf", "fig4.png", "fig7.pdf", "fig7.png"]
    assert (
        main(["figures", "--results", str(tmp_path / "nowhere"), "--out-dir", str(out), "--params", params])
        == 2
    )


def test_one_epoch_curves_are_visible_with_whole_epoch_ticks(tmp_path):
    """One pretraining epoch per stage (the quick preset) gives one point per line: it is
    drawn with a marker, and the x axis shows whole epochs, not 0.95 ... 1.05."""
    import pandas as pd

    one_epoch = pd.DataFrame(
        {
            "loss_mean": [0.05, 0.03, 0.08],
            "loss_min": [0.05, 0.03, 0.08],
            "loss_max": [0.05, 0.03, 0.08],
            "n": 1,
        },
        index=pd.MultiIndex.from_tuples([(0, 1), (1, 1), (2, 1)], names=["stage", "epoch"]),
    )
    curve = pd.DataFrame(
        {f"val_acc_{k}": [0.1, 0.2, 0.3] for k in ("mean", "min", "max")} | {"n": 1},
        index=pd.Index([1, 2, 3], name="epoch"),
    )
    fig = p5.plot_autoencoder(curve, curve, one_epoch)
    fig.canvas.draw()
    ax_acc, ax_rec = fig.axes
    for stage in range(3):
        assert line(ax_rec, f"stage {stage}").get_marker() == "o"
    assert line(ax_acc, "Fourier-CNN, no pretraining").get_marker() == "None"  # lines stay lines
    ticks = [t for t in ax_rec.get_xticks() if ax_rec.get_xlim()[0] <= t <= ax_rec.get_xlim()[1]]
    assert 1 in ticks and all(float(t).is_integer() for t in ticks)


def test_health_figure_draws_each_layer_of_each_trainable_model(tmp_path):
    """One line per (activation, layer) in the movement panel; the Fourier-only panel has only
    Fourier lines; the curves are the per-epoch means of the CSVs (hand-made fixture values)."""
    results = build_results(
        tmp_path / "out", sizes=["small"], activations=["relu", "fourier", "lc"], seeds=[0, 1]
    )
    health = {(("small", a)): fg.health_curves(results, "small", a, [0, 1]) for a in ("fourier", "lc")}
    fig = ph.plot_health(health, ["small"])
    movement, outside, nonlinear = fig.axes[:3]
    labels = [line.get_label() for line in movement.get_lines()]
    assert len(labels) == 8 and all(("Fourier-CNN" in label) or ("LC-CNN" in label) for label in labels)
    assert [line.get_label() for line in outside.get_lines()] == [
        label for label in labels if "Fourier" in label
    ]
    # fixture: relative distance 0.05 per epoch, the same on both seeds
    x, y = movement.get_lines()[0].get_data()
    assert list(x) == list(range(0, len(x))) and y[2] == pytest.approx(0.10)
    plt.close(fig)
