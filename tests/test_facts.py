"""The paper's facts have one home each (trainact.names, trainact.layout, the labels and
thresholds of trainact.analysis, the figure list and captions of trainact.report); these tests
hold the others to them."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from trainact import layout, names
from trainact.analysis import thresholds
from trainact.report import captions, figure_list
from trainact.sourcegraph import source_files, trainact_closure

SRC = Path(__file__).resolve().parents[1] / "src"


# The modules the workflow imports while Snakemake parses the Snakefile, which need not have
# torch, numpy or matplotlib.
WORKFLOW_FACTS = (
    "trainact.names",
    "trainact.layout",
    "trainact.report.figure_list",
    "trainact.report.captions",
)


@pytest.mark.parametrize("module", WORKFLOW_FACTS)
def test_the_facts_import_nothing_but_the_standard_library(module):
    assert all(m.split(".")[1] in ("names", "layout", "analysis", "report") for m in trainact_closure(module))
    code = (
        f"import sys; sys.path.insert(0, {str(SRC)!r}); import {module}; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'torch', 'numpy', 'pandas', 'matplotlib', 'jinja2', 'yaml'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_no_training_command_reads_a_caption_label_or_threshold():
    """What only the report prints lives apart from what training reads (the rerun promise)."""
    for family in ("train", "autoencoder", "pso"):
        files = source_files(family)
        assert not [f for f in files if f.startswith(("trainact/report/", "trainact/analysis/"))], family


def test_every_figure_names_the_function_that_draws_it_and_its_group_draws_it():
    figures = importlib.import_module("trainact.report.figures")
    assert tuple(figures.DRAW_GROUP) == figure_list.FIGURE_GROUPS
    for figure in figure_list.FIGURES.values():
        module, name = figure.drawn_by.rsplit(".", 1)
        assert module.startswith("trainact.report.plot_"), figure
        assert callable(getattr(importlib.import_module(module), name)), figure
        assert getattr(figures, name) is getattr(importlib.import_module(module), name), figure
        assert f"{name}(" in inspect.getsource(figures.DRAW_GROUP[figure.group]), (figure.stem, figure.group)


def test_curve_figures_are_the_papers_numbers_validation_first_large_to_small():
    stems = figure_list.figure_stems(["curves"], names.SIZES)["curves"]
    assert stems == ["fig2", "fig3", "fig4", "fig5", "fig6", "fig7"]
    assert figure_list.figure_stems(["curves"], ["small"])["curves"] == ["fig4", "fig7"]
    assert {f.paper_number for f in figure_list.FIGURES.values()} - {None} == set(range(2, 10))


@pytest.mark.parametrize(
    "activations, autoencoder, pso, groups",
    [
        (["relu"], False, False, ("curves", "structure")),
        (["relu", "lc"], True, False, ("curves", "autoencoder", "activations", "health", "structure")),
        (["fourier"], False, True, ("curves", "pso", "activations", "health", "structure")),
    ],
)
def test_figure_groups_follow_what_a_run_has(activations, autoencoder, pso, groups):
    assert figure_list.figure_groups(activations, autoencoder, pso) == groups
    assert figure_list.figure_groups(activations, autoencoder, pso, chosen=["structure", "pso"]) == (
        "pso",
        "structure",
    )


def test_every_caption_is_rst_with_its_title_and_each_text_is_written_once():
    for name, entry in captions.CAPTIONS.items():
        assert captions.caption_rst(name) == f"**{entry.title}.** {entry.caption}\n"
    texts = [entry.caption for entry in captions.CAPTIONS.values()]
    assert len(set(texts)) == len(texts)
    assert set(figure_list.FIGURES) <= set(captions.CAPTIONS)


def test_fig9_caption_states_the_band_the_figure_draws():
    """The caption follows the plot's own constant (the 'about half' band), not a copy of it."""
    low, high = thresholds.ABOUT_HALF
    assert f"{low:g}-{high:g}" in captions.CAPTIONS["fig9"].caption


def test_the_results_layout_is_the_aggregations():
    results = importlib.import_module("trainact.analysis.results")
    root = Path("out")
    assert (
        results.train_history_path(root, "small", "lc", 2)
        == root / layout.train_run_dir("small", "lc", 2) / "history.csv"
    )
    assert results.pso_history_path(root, 1) == root / layout.pso_run_dir(1) / "history.csv"
    assert results.autoencoder_pretrain_path(root, 0) == root / layout.autoencoder_run_dir(0) / "pretrain.csv"
