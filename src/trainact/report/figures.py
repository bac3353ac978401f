"""``trainact figures``: the paper's Figures 2-9, the learned activation curves, their health
and the network structure, drawn from a results folder.

Which figures there are, their paper numbers, captions and file stems are in
:data:`trainact.report.figure_list.FIGURES`; each figure group has one ``draw_<group>`` function here
(:data:`DRAW_GROUP`) that reads its results and calls the group's plotting function
(:mod:`trainact.report.plot_curves`, :mod:`~trainact.report.plot_section5`,
:mod:`~trainact.report.plot_activations`, :mod:`~trainact.report.plot_health`,
:mod:`~trainact.report.plot_structure`). Every plotting function takes already-aggregated data
and returns a matplotlib ``Figure`` (so tests can read the plotted values back);
:func:`make_figures` draws and saves each figure as PNG and PDF
(:func:`trainact.report.plot_style.save_figure`).

Figure 9's RMSProp reference line is the number ``trainact aggregate`` wrote to
``<results>/tables/summary.json`` (``pso.rmsprop_best_val_acc``), so the figures need that file.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from tqdm import tqdm

from trainact.analysis.results import (
    METRICS,
    PRETRAIN_REQUIRED,
    PSO_REQUIRED,
    autoencoder_history_path,
    autoencoder_pretrain_path,
    mean_curves,
    ok_rows,
    pso_history_path,
    read_csv_checked,
    read_history,
    train_activations_path,
    train_history_path,
)
from trainact.layout import AGGREGATE_SUMMARY_FILE, TABLES_DIR
from trainact.names import AUTOENCODER_MODEL, PSO_MODEL, TRAINABLE
from trainact.report.figure_list import CURVE_FIGURES, FIGURE_GROUPS, FIGURE_TABLES, curve_figure_stem
from trainact.report.figure_params import FigureParams
from trainact.report.plot_activations import plot_activations
from trainact.report.plot_curves import plot_curves
from trainact.report.plot_health import plot_health
from trainact.report.plot_section5 import plot_autoencoder, plot_pso
from trainact.report.plot_structure import plot_structure
from trainact.report.plot_style import save_figure
from trainact.report.structure_table import write_structure_table
from trainact.run_files import HEALTH_FILE

log = logging.getLogger(__name__)

#: Columns of a run's activation_health.csv that the health figure draws (trainact.training.train writes it).
HEALTH_REQUIRED = (
    "epoch",
    "layer",
    "param_relative_distance",
    "outside_fit_share",
    "nonlinear_share",
    "relu_nonlinear_share",
)


# ------------------------------------------------------------------------------------ loading


def train_curves(results: Path, size: str, activation: str, seeds: Sequence[int]) -> pd.DataFrame:
    """Per-epoch mean/std/min/max over seeds of the four metrics of one model (``ok`` epochs only)."""
    frames = {
        seed: ok_rows(read_history(train_history_path(results, size, activation, seed))) for seed in seeds
    }
    return mean_curves(frames, "epoch", METRICS)


def load_activation_documents(
    results: Path, sizes: Sequence[str], activations: Sequence[str], seeds: Sequence[int]
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """``(size, activation) -> [activations.json of each seed]`` for the trainable activations.

    A run that diverged writes no ``activations.json``; such seeds are skipped with a warning,
    but a model with none at all raises ``FileNotFoundError`` naming the expected paths.
    """
    documents: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for size in sizes:
        for activation in [a for a in activations if a in TRAINABLE]:
            paths = [train_activations_path(results, size, activation, seed) for seed in seeds]
            present = [p for p in paths if p.is_file()]
            for path in sorted(set(paths) - set(present)):
                log.warning("no learned activations for %s (diverged run?); skipped", path)
            if not present:
                raise FileNotFoundError(
                    f"no activations.json for {size}-{activation}: expected {[str(p) for p in paths]}"
                )
            documents[(size, activation)] = [json.loads(p.read_text(encoding="utf-8")) for p in present]
    return documents


def health_curves(results: Path, size: str, activation: str, seeds: Sequence[int]) -> pd.DataFrame:
    """Per (layer, epoch) mean/std/min/max over seeds of a model's activation health columns."""
    frames = {}
    for seed in seeds:
        path = train_history_path(results, size, activation, seed).with_name(HEALTH_FILE)
        frames[seed] = read_csv_checked(path, HEALTH_REQUIRED)
    return mean_curves(frames, ["layer", "epoch"], list(HEALTH_REQUIRED[2:]))


def pso_reference_best(results: Path, pso_seeds: Sequence[int]) -> float:
    """RMSProp's best validation accuracy, mean over PSO's seeds, as ``trainact aggregate`` wrote
    it to ``<results>/tables/summary.json`` (``pso.rmsprop_best_val_acc``); an error when that
    file is missing or summarises other PSO seeds."""
    path = Path(results) / TABLES_DIR / AGGREGATE_SUMMARY_FILE
    if not path.is_file():
        raise FileNotFoundError(f"expected file is missing: {path} (run 'trainact aggregate' first)")
    pso = json.loads(path.read_text(encoding="utf-8"))["pso"]
    if pso.get("status") != "ok" or pso["seeds"] != [int(s) for s in pso_seeds]:
        raise ValueError(
            f"{path}: its PSO summary ({pso.get('status')}, seeds {pso.get('seeds')}) is not of the figure's "
            f"PSO seeds {list(pso_seeds)}"
        )
    return float(pso["rmsprop_best_val_acc"]["mean"])


# ------------------------------------------------------------------------------------ drawing
# One function per figure group: reads what the group needs and returns stem -> Figure (not
# saved). trainact.report.figure_list.FIGURES says which group and plotting function make each figure.


def draw_curves(results: Path, params: FigureParams) -> dict[str, Figure]:
    """Figures 2-7: every size present, on validation and on training data."""
    curves = {
        (size, a): train_curves(results, size, a, params.seeds)
        for size in params.sizes
        for a in params.activations
    }
    return {
        curve_figure_stem(split, size): plot_curves(
            {a: curves[(size, a)] for a in params.activations}, split, size
        )
        for split, size in CURVE_FIGURES
        if size in params.sizes
    }


def draw_autoencoder(results: Path, params: FigureParams) -> dict[str, Figure]:
    """Figure 8, over the autoencoder's seeds."""
    seeds = params.autoencoder_seeds
    pretrained = mean_curves(
        {s: ok_rows(read_history(autoencoder_history_path(results, s))) for s in seeds}, "epoch", METRICS
    )
    baseline = train_curves(results, *AUTOENCODER_MODEL, seeds)
    pretrain = mean_curves(
        {s: read_csv_checked(autoencoder_pretrain_path(results, s), PRETRAIN_REQUIRED) for s in seeds},
        ["stage", "epoch"],
        ["loss"],
    )
    return {"fig8": plot_autoencoder(pretrained, baseline, pretrain)}


def draw_pso(results: Path, params: FigureParams) -> dict[str, Figure]:
    """Figure 9, over PSO's seeds, against the RMSProp runs of the same network and seeds (their
    best validation accuracy as summary.json holds it: :func:`pso_reference_best`)."""
    seeds = params.pso_seeds
    pso = mean_curves(
        {s: read_csv_checked(pso_history_path(results, s), PSO_REQUIRED) for s in seeds},
        "generation",
        ["test_acc", "train_acc"],
    )
    reference = train_curves(results, *PSO_MODEL, seeds)
    return {"fig9": plot_pso(pso, reference, pso_reference_best(results, seeds))}


def draw_activations(results: Path, params: FigureParams) -> dict[str, Figure]:
    documents = load_activation_documents(results, params.sizes, params.activations, params.seeds)
    return {"activations": plot_activations(documents, params.sizes, params.activation_range)}


def draw_health(results: Path, params: FigureParams) -> dict[str, Figure]:
    health = {
        (size, a): health_curves(results, size, a, params.seeds)
        for size in params.sizes
        for a in params.activations
        if a in TRAINABLE
    }
    return {"activation_health": plot_health(health, params.sizes)}


def structure_descriptions(params: FigureParams) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """``size -> activation -> describe(...)`` of the networks the structure figure shows: the
    ReLU CNN and the trainable ones of ``params``, generated from trainact.nn.models."""
    from trainact.nn.models import describe

    shown = ["relu"] + [a for a in TRAINABLE if a in params.activations]
    return {
        size: {a: describe(size, dict(params.model), activation=a) for a in shown} for size in params.sizes
    }


def draw_structure(results: Path, params: FigureParams) -> dict[str, Figure]:
    """The network structure (needs no results)."""
    return {"structure": plot_structure(structure_descriptions(params))}


DRAW_GROUP = {
    "curves": draw_curves,
    "autoencoder": draw_autoencoder,
    "pso": draw_pso,
    "activations": draw_activations,
    "health": draw_health,
    "structure": draw_structure,
}
assert tuple(DRAW_GROUP) == FIGURE_GROUPS, (
    "one drawing function per figure group of trainact.report.figure_list"
)


def draw_group(group: str, results: Path, params: FigureParams) -> dict[str, Figure]:
    """The figures of one group, stem -> Figure (not saved)."""
    if group not in DRAW_GROUP:
        raise ValueError(f"unknown figure group {group!r}; choose from {list(FIGURE_GROUPS)}")
    return DRAW_GROUP[group](results, params)


def make_figures(results: Path, out_dir: Path, params: FigureParams, progress: bool = True) -> list[Path]:
    """Draw and save every figure of ``params.groups()``, and the tables that come with them
    (:data:`trainact.report.figure_list.FIGURE_TABLES`: the structure's layer table); returns the
    written files."""
    written: list[Path] = []
    for group in tqdm(params.groups(), desc="figures", unit="group", disable=not progress):
        for stem, fig in draw_group(group, results, params).items():
            written += save_figure(fig, out_dir, stem)
            plt.close(fig)
            if stem in FIGURE_TABLES:
                written.append(write_figure_table(stem, params, Path(out_dir) / FIGURE_TABLES[stem]))
    return written


def write_figure_table(stem: str, params: FigureParams, path: Path) -> Path:
    """The table that comes with figure ``stem`` (only the structure's layer table has one)."""
    if stem != "structure":
        raise ValueError(f"figure {stem!r} has no table")
    return write_structure_table(structure_descriptions(params), path)


# --------------------------------------------------------------------------------------- CLI


def _cmd_figures(args: argparse.Namespace) -> int:
    from trainact.cli import CLIError, parse_params

    try:
        params = FigureParams.from_dict(parse_params(args.params))
        make_figures(args.results, args.out_dir, params, progress=not args.no_progress)
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    return 0


def register_cli(subparsers) -> None:
    parser = subparsers.add_parser(
        "figures",
        help="Figures 2-9, learned activations, their health and network structure (PNG + PDF)",
        description="Draw the paper's figures from the results folder. Files per group: curves -> "
        "fig2..fig7 (one per size and split present), autoencoder -> fig8, pso -> fig9 (with the RMSProp "
        "reference from <results>/tables/summary.json), activations -> activations, health -> "
        "activation_health, structure -> structure (and its layer table, structure_layers.csv); "
        "each figure as .png and .pdf.",
    )
    parser.add_argument("--results", required=True, type=Path, help="results folder (<out>)")
    parser.add_argument("--out-dir", required=True, type=Path, help="where the figures go (<out>/figures)")
    parser.add_argument(
        "--params",
        default="{}",
        help='JSON: {"sizes": [...], "activations": [...], "seeds": [...], "autoencoder_seeds": [...], '
        '"pso_seeds": [...], "figures": [groups], "model": {...}, "activation_range": [lo, hi]}',
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=_cmd_figures)
