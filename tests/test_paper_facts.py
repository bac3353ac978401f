"""trainact.paper_facts is the one home of the paper's facts; these tests hold the others to it."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from trainact import paper_facts as facts
from trainact.sourcegraph import trainact_closure

SRC = Path(__file__).resolve().parents[1] / "src"


def test_the_facts_import_nothing_but_the_standard_library():
    """common.smk imports it inside Snakemake, which need not have torch, numpy or matplotlib."""
    assert trainact_closure("trainact.paper_facts") == {"trainact.paper_facts"}
    code = (
        f"import sys; sys.path.insert(0, {str(SRC)!r}); import trainact.paper_facts; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'torch', 'numpy', 'pandas', 'matplotlib', 'jinja2', 'yaml'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_figure_names_the_function_that_draws_it_and_its_group_draws_it():
    figures = importlib.import_module("trainact.figures")
    assert tuple(figures.DRAW_GROUP) == facts.FIGURE_GROUPS
    for figure in facts.FIGURES.values():
        module, name = figure.drawn_by.rsplit(".", 1)
        assert module == "trainact.figures" and callable(getattr(figures, name)), figure
        assert f"{name}(" in inspect.getsource(figures.DRAW_GROUP[figure.group]), (figure.stem, figure.group)


def test_curve_figures_are_the_papers_numbers_validation_first_large_to_small():
    stems = facts.figure_stems(["curves"], facts.SIZES)["curves"]
    assert stems == ["fig2", "fig3", "fig4", "fig5", "fig6", "fig7"]
    assert facts.figure_stems(["curves"], ["small"])["curves"] == ["fig4", "fig7"]
    assert {f.paper_number for f in facts.FIGURES.values()} - {None} == set(range(2, 10))


@pytest.mark.parametrize(
    "activations, autoencoder, pso, groups",
    [
        (["relu"], False, False, ("curves", "structure")),
        (["relu", "lc"], True, False, ("curves", "autoencoder", "activations", "health", "structure")),
        (["fourier"], False, True, ("curves", "pso", "activations", "health", "structure")),
    ],
)
def test_figure_groups_follow_what_a_run_has(activations, autoencoder, pso, groups):
    assert facts.figure_groups(activations, autoencoder, pso) == groups
    assert facts.figure_groups(activations, autoencoder, pso, chosen=["structure", "pso"]) == ("pso", "structure")


def test_every_caption_is_rst_with_its_title_and_each_text_is_written_once():
    for name, entry in facts.CAPTIONS.items():
        assert facts.caption_rst(name) == f"**{entry.title}.** {entry.caption}\n"
    texts = [entry.caption for entry in facts.CAPTIONS.values()]
    assert len(set(texts)) == len(texts)
    assert set(facts.FIGURES) <= set(facts.CAPTIONS)


def test_fig9_caption_states_the_band_the_figure_draws():
    """The caption follows the plot's own constant (the 'about half' band), not a copy of it."""
    low, high = facts.ABOUT_HALF
    assert f"{low:g}-{high:g}" in facts.FIGURES["fig9"].caption


def test_the_results_layout_is_the_aggregations():
    aggregate = importlib.import_module("trainact.aggregate")
    root = Path("out")
    assert aggregate.train_history_path(root, "small", "lc", 2) == root / facts.train_run_dir("small", "lc", 2) / "history.csv"
    assert aggregate.pso_history_path(root, 1) == root / facts.pso_run_dir(1) / "history.csv"
    assert aggregate.autoencoder_pretrain_path(root, 0) == root / facts.autoencoder_run_dir(0) / "pretrain.csv"
