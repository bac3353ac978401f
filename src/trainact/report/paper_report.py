"""The paper report (``trainact paper-report``): Markdown and LaTeX (and a PDF where TeX is installed).

One context dict (:func:`build_context`) feeds both templates, ``paper/report.md.j2`` and
``paper/report.tex.j2`` (Jinja2, ``StrictUndefined``: a missing key is an error, never an empty
cell). This module assembles that context and renders it; it computes no statistic. The numbers
come from ``summary.json`` (``trainact aggregate``: the tables, the Section 5 experiments and the
verdicts on the paper's claims), ``trainact sensitivity``'s JSON and the provenance; their
rounding and the templates' ``tex``, ``texcode`` and ``md`` filters are :mod:`trainact.report.formatting`,
the PDF build is :mod:`trainact.report.pdf`.

The report opens with its answer: a "Verdicts" section (the claims of the paper, each with its
verdict, key numbers, seeds and whether it is a preview; then whether any verdict depends on the
choices the paper leaves open, from ``trainact sensitivity``'s JSON given with ``--sensitivity``).
The first page holds the title and the verdicts only. The run's full settings are not printed:
the report writes them beside itself (:mod:`trainact.report.run_settings`, ``settings.yaml``, whose
SHA-256 it prints), gives the command that reruns them, and lists in its appendix the settings
that differ from the paper config.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import yaml

from trainact.analysis.labels import MODEL_NAMES
from trainact.analysis.tables import load_published
from trainact.files import write_text_atomic
from trainact.layout import AGGREGATE_SUMMARY_FILE, SCHEDULE_AXIS_FIGURE
from trainact.report.captions import CAPTIONS
from trainact.report.claims_context import (
    claim_rows,
    preview_notes,
    schedule_axis_context,
    sensitivity_context,
    with_axis_lines,
)
from trainact.report.figure_list import FIGURE_TABLES, FIGURES
from trainact.report.figure_params import FigureParams, figure_stems
from trainact.report.formatting import ROUNDING_NOTE, md_cell, tex_code, tex_escape
from trainact.report.page import TEXT_WIDTH_CM
from trainact.report.pdf import build_pdf, pdf_plan
from trainact.report.results_context import (
    autoencoder_context,
    diverged_lines,
    network_rows,
    provenance_context,
    pso_context,
    table1_metrics,
    table1_rows,
    table2_rows,
)
from trainact.report.run_settings import SETTINGS_FILE, differences, write_settings
from trainact.report.structure_table import read_structure_table

log = logging.getLogger(__name__)

TEMPLATE_NAMES = {"md": "report.md.j2", "tex": "report.tex.j2"}
#: The command that runs each preset from the repository's root (the README's and the Makefile's):
#: the paper config is ``config.yaml`` alone, every other preset ``workflow/presets/<name>.yaml``
#: over it.
PRESET_COMMANDS = {
    "paper": "snakemake --cores all --resources gpu=1",
    "quick": "snakemake --cores all --resources gpu=1 --configfile workflow/presets/quick.yaml",
    "smoke": "snakemake --cores all --configfile workflow/presets/smoke.yaml",
}
#: The workflow's target that renders only the report (its runs must exist).
REPORT_TARGET = "paper_report"
DEFAULT_TEMPLATES = Path(__file__).resolve().parents[3] / "paper"


def environment(templates: Path) -> jinja2.Environment:
    """The Jinja2 environment of both templates: strict, no autoescape, ``tex`` and ``md`` filters."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["tex"] = tex_escape
    env.filters["texcode"] = tex_code
    env.filters["md"] = md_cell
    return env


# ------------------------------------------------------------------------------------ inputs


def load_result(path: Path | None, command: str) -> dict[str, Any] | None:
    """The JSON that ``trainact <command>`` wrote (``None`` without a path); a missing file or one
    without a ``status`` is an error naming the path and the command."""
    if path is None:
        return None
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"expected file is missing: {path} (run 'trainact {command}' first)")
    document = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(document, Mapping) or "status" not in document:
        raise ValueError(f"{path}: not a 'trainact {command}' result (no 'status')")
    return document


def load_sensitivity(path: Path | None) -> dict[str, Any] | None:
    """The JSON of ``trainact sensitivity`` (``None`` without a path); a missing file is an error."""
    return load_result(path, "sensitivity")


@dataclass(frozen=True)
class ReportParams:
    """The ``--params`` slice of ``trainact paper-report``: the figure parameters (to know which
    figures exist) plus ``preset`` (name of the config preset), ``settings`` (the run's config,
    written beside the report as ``settings.yaml``; the claims' preview rule judged it in
    ``trainact aggregate``), ``paper_settings`` (the paper config, ``config.yaml`` with the
    schema's defaults: the appendix lists the settings that differ from it; ``None``: not given)
    and, when no ``--provenance`` file is given, ``dataset`` and ``benchmarks`` paths for
    :func:`trainact.report.provenance.collect`."""

    figures: FigureParams
    preset: str = "custom"
    settings: Mapping[str, Any] = field(default_factory=dict)
    paper_settings: Mapping[str, Any] | None = None
    dataset: str | None = None
    benchmarks: str | None = None

    OWN_KEYS = ("preset", "settings", "paper_settings", "dataset", "benchmarks")

    @classmethod
    def from_dict(cls, params: Mapping[str, Any]) -> ReportParams:
        own = {k: params[k] for k in cls.OWN_KEYS if k in params}
        for key in ("settings", "paper_settings"):
            if own.get(key) is not None and not isinstance(own[key], Mapping):
                raise ValueError(f"report parameter {key!r} must be a mapping, got {own[key]!r}")
        return cls(figures=FigureParams.from_dict(params, ignore=cls.OWN_KEYS), **own)


def load_deviations(paths: Sequence[Path] | None = None) -> list[dict[str, str]]:
    """Deviation entries (``topic``, ``kind`` = choice | erratum, ``text``) from YAML files.

    Without ``paths``: the packaged ``trainact/deviations.yaml``. Several files are concatenated.
    """
    texts = (
        [resources.files("trainact.report").joinpath("deviations.yaml").read_text(encoding="utf-8")]
        if not paths
        else [Path(p).read_text(encoding="utf-8") for p in paths]
    )
    entries: list[dict[str, str]] = []
    for text in texts:
        for entry in yaml.safe_load(text) or []:
            if (
                not isinstance(entry, Mapping)
                or set(entry) != {"topic", "kind", "text"}
                or entry["kind"] not in ("choice", "erratum")
            ):
                raise ValueError(
                    f"bad deviation entry {entry!r}: needs exactly topic, kind (choice|erratum), text"
                )
            entries.append({k: str(entry[k]).strip() for k in ("topic", "kind", "text")})
    return entries


def read_summary(tables: Path) -> dict[str, Any]:
    """``<tables>/summary.json``, which ``trainact aggregate`` writes; missing: an error saying so."""
    path = Path(tables) / AGGREGATE_SUMMARY_FILE
    if not path.is_file():
        raise FileNotFoundError(f"expected file is missing: {path} (run 'trainact aggregate' first)")
    return json.loads(path.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------------- context


def figure_entries(params: FigureParams, figures_rel: str) -> list[dict[str, str]]:
    """The figures the report shows (those ``params`` make), with title, caption and file paths."""
    return [
        {
            "stem": stem,
            "title": FIGURES[stem].title,
            "caption": CAPTIONS[stem].caption,
            "png": f"{figures_rel}/{stem}.png",
            "pdf": f"{stem}.pdf",
        }
        for stems in figure_stems(params).values()
        for stem in stems
    ]


def check_figures(figures_dir: Path, stems: Sequence[str]) -> None:
    """Raise ``FileNotFoundError`` naming every PNG or PDF of ``stems``, and every table that comes
    with them (:data:`trainact.report.figure_list.FIGURE_TABLES`), missing from ``figures_dir``."""
    names = [f"{stem}.{ext}" for stem in stems for ext in ("png", "pdf")]
    names += [FIGURE_TABLES[stem] for stem in stems if stem in FIGURE_TABLES]
    missing = [str(Path(figures_dir) / name) for name in names if not (Path(figures_dir) / name).is_file()]
    if missing:
        raise FileNotFoundError(f"figure file(s) missing: {missing}")


def structure_context(figures: Sequence[Mapping[str, str]], figures_dir: Path) -> dict[str, Any] | None:
    """The network structure, shown in its own section: the figure's entry and its layer table
    (``structure_layers.csv`` of the figures folder) with the sizes' columns; ``None`` where the
    figures do not include it."""
    entry = next((f for f in figures if f["stem"] == "structure"), None)
    if entry is None:
        return None
    header, rows = read_structure_table(Path(figures_dir) / FIGURE_TABLES["structure"])
    sizes = [name.removesuffix(" output") for name in header if name.endswith(" output")]
    networks = [row[1] for row in rows if row[0] == "total"]
    return {
        "figure": entry,
        "sizes": sizes,
        "networks": networks,
        "rows": rows,
        "table": FIGURE_TABLES["structure"],
    }


def rerun_commands(settings_path: str) -> list[tuple[str, str]]:
    """What to run to make these results again: one command per preset, then this run's own
    settings file (every key set, so exactly this run) and the report alone."""
    exact = f"{PRESET_COMMANDS['paper']} --configfile {settings_path}"
    return [
        *((f"the {name} preset", command) for name, command in PRESET_COMMANDS.items()),
        ("exactly this run (its settings file)", exact),
        ("only this report (after its runs exist)", f"{exact} {REPORT_TARGET}"),
    ]


def scope(summary: Mapping[str, Any]) -> dict[str, str]:
    """What the runs cover: sizes, models, seeds, epochs and the number of models."""
    epochs = sorted({int(r["epochs_ok"]) for r in summary["runs"]})
    return {
        "sizes": ", ".join(summary["sizes"]),
        "activations": ", ".join(MODEL_NAMES[a] for a in summary["activations"]),
        "seeds": ", ".join(str(s) for s in summary["seeds"]),
        "epochs": ", ".join(str(e) for e in epochs),
        "models": str(len(summary["table1"])),
    }


def build_context(
    summary: Mapping[str, Any],
    provenance: Mapping[str, Any],
    params: ReportParams,
    figures_dir: Path,
    out_dir: Path,
    deviations: Sequence[Mapping[str, str]],
    pdf_note: str,
    settings_file: tuple[Path, str] | None = None,
    published: Mapping[str, Any] | None = None,
    sensitivity: Mapping[str, Any] | None = None,
    schedule_axis: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The one context both templates render (every number already formatted).

    ``sensitivity``: the JSON of ``trainact sensitivity`` (absent or ``"status": "not run"``: the
    report says the study was not run). ``schedule_axis``: the JSON of ``trainact schedule-axis``
    (likewise); its figure must then be in ``figures_dir``. ``settings_file``: the path and SHA-256
    of the settings file (:func:`trainact.report.run_settings.write_settings`; default: the path
    it has in ``out_dir``, no checksum).
    """
    published = published if published is not None else load_published()
    figures_rel = Path(os.path.relpath(Path(figures_dir), Path(out_dir))).as_posix()
    figures = figure_entries(params.figures, figures_rel)
    axis = schedule_axis_context(schedule_axis, figures_rel)
    check_figures(figures_dir, [f["stem"] for f in figures] + ([SCHEDULE_AXIS_FIGURE] if axis["run"] else []))
    settings_path, settings_sha256 = settings_file or (Path(out_dir) / SETTINGS_FILE, None)
    claims = with_axis_lines(claim_rows(summary["claims"]), axis["lines"])
    return {
        "title": "Reproduction of Liao (2020), Trainable Activation Function in Image Classification",
        "source": summary["source"],
        "preset": params.preset,
        "scope": scope(summary),
        "text_width_cm": f"{TEXT_WIDTH_CM:g}",
        "settings_file": {"path": Path(settings_path).as_posix(), "sha256": settings_sha256},
        "paper_config_given": params.paper_settings is not None,
        "settings_differences": [vars(d) for d in differences(params.settings, params.paper_settings)]
        if params.paper_settings is not None
        else [],
        "provenance": provenance_context(provenance),
        "rounding": ROUNDING_NOTE,
        **table1_metrics(),
        "table1": table1_rows(summary),
        "networks": network_rows(summary),
        "table2": table2_rows(summary, published),
        "diverged": diverged_lines(summary),
        "diverged_rule": summary["definitions"]["diverged"],
        "figures_dir": figures_rel,
        "figures": [f for f in figures if f["stem"] != "structure"],
        "structure": structure_context(figures, figures_dir),
        "autoencoder": autoencoder_context(summary["autoencoder"]),
        "pso": pso_context(summary["pso"]),
        "claims": claims,
        "preview_notes": preview_notes(claims),
        "schedule_axis": axis,
        "claims_rule": summary["definitions"]["claims"],
        "preview_rule": summary["definitions"]["claims_preview"],
        "sensitivity": sensitivity_context(sensitivity),
        "choices": [d for d in deviations if d["kind"] == "choice"],
        "errata": [d for d in deviations if d["kind"] == "erratum"],
        "pdf_note": pdf_note,
        "rerun": rerun_commands(Path(settings_path).as_posix()),
    }


# -------------------------------------------------------------------------------- rendering


def render(context: Mapping[str, Any], out_dir: Path, templates: Path = DEFAULT_TEMPLATES) -> dict[str, Path]:
    """Render ``report.md`` and ``report.tex`` into ``out_dir`` (atomically); returns their paths."""
    env = environment(Path(templates))
    written = {}
    for kind, name in TEMPLATE_NAMES.items():
        text = env.get_template(name).render(**context)
        path = Path(out_dir) / f"report.{kind}"
        write_text_atomic(path, text)
        written[kind] = path
    return written


def make_report(
    results: Path,
    tables: Path,
    figures_dir: Path,
    out_dir: Path,
    params: ReportParams,
    pdf: str = "auto",
    templates: Path = DEFAULT_TEMPLATES,
    provenance: Mapping[str, Any] | None = None,
    deviations: Sequence[Mapping[str, str]] | None = None,
    command: str = "trainact paper-report",
    sensitivity: Path | None = None,
    schedule_axis: Path | None = None,
) -> dict[str, Path]:
    """Render the report from ``<tables>/summary.json`` and the figures, write the run's settings
    beside it (``settings.yaml``); build the PDF per ``pdf``.

    Without ``provenance``, it is collected now from ``params.dataset`` and ``params.benchmarks``
    (default ``<results>/benchmarks`` where that folder exists, the workflow's layout).
    ``sensitivity``: path of ``sensitivity.json`` (``trainact sensitivity``); without it the
    sensitivity section says "not run". ``schedule_axis``: path of ``schedule_axis.json``
    (``trainact schedule-axis``); without it the schedule-axis section says "not run".
    ``command``: the command line that rendered it, logged (the report gives the commands that
    rerun the runs instead, :func:`rerun_commands`).
    """
    summary_path = Path(tables) / AGGREGATE_SUMMARY_FILE
    if not summary_path.is_file():
        raise FileNotFoundError(f"expected file is missing: {summary_path} (run 'trainact aggregate' first)")
    build, note = pdf_plan(pdf)
    summary = read_summary(tables)
    if provenance is None:
        provenance = collect_provenance(results, params)
    settings_file = write_settings(params.settings, out_dir)
    context = build_context(
        summary,
        provenance,
        params,
        figures_dir,
        out_dir,
        deviations if deviations is not None else load_deviations(),
        note,
        settings_file=settings_file,
        sensitivity=load_sensitivity(sensitivity),
        schedule_axis=load_result(schedule_axis, "schedule-axis"),
    )
    written = render(context, out_dir, templates)
    written["settings"] = settings_file[0]
    if build:
        written["pdf"] = build_pdf(written["tex"], figures_dir, Path(out_dir) / "report.pdf")
    else:
        print(f"trainact paper-report: {note}", file=sys.stderr)
    log.info(
        "report written: %s (results %s) by: %s",
        ", ".join(str(p) for p in written.values()),
        results,
        command,
    )
    return written


def collect_provenance(results: Path, params: ReportParams) -> dict[str, Any]:
    """The provenance collected now, from ``params.dataset`` and ``params.benchmarks`` (default
    ``<results>/benchmarks`` where that folder exists, the workflow's layout)."""
    from trainact.report.provenance import collect

    benchmarks = Path(params.benchmarks) if params.benchmarks else Path(results) / "benchmarks"
    return collect(
        dataset=Path(params.dataset) if params.dataset else None,
        benchmarks=benchmarks if params.benchmarks or benchmarks.is_dir() else None,
    )


# --------------------------------------------------------------------------------------- CLI


def _cmd_paper_report(args: argparse.Namespace) -> int:
    from trainact.cli import CLIError, parse_params

    try:
        params = ReportParams.from_dict(parse_params(args.params))
        provenance = (
            json.loads(Path(args.provenance).read_text(encoding="utf-8")) if args.provenance else None
        )
        make_report(
            args.results,
            args.tables,
            args.figures,
            args.out_dir,
            params,
            pdf=args.pdf,
            templates=args.templates,
            provenance=provenance,
            deviations=load_deviations(args.deviations),
            command="trainact " + shlex.join(sys.argv[1:]),
            sensitivity=args.sensitivity,
            schedule_axis=args.schedule_axis,
        )
    except (FileNotFoundError, ValueError, RuntimeError, jinja2.TemplateError) as exc:
        raise CLIError(str(exc)) from None
    return 0


def register_cli(subparsers) -> None:
    parser = subparsers.add_parser(
        "paper-report",
        help="report.md, report.tex (and report.pdf) from the tables and figures",
        description="Render the reproduction report. --pdf auto builds report.pdf only when latexmk and "
        "pdflatex are installed (and says so in report.md otherwise).",
    )
    parser.add_argument("--results", required=True, type=Path, help="results folder (<out>)")
    parser.add_argument("--tables", required=True, type=Path, help="folder with summary.json (<out>/tables)")
    parser.add_argument("--figures", required=True, type=Path, help="folder with the figures (<out>/figures)")
    parser.add_argument("--out-dir", required=True, type=Path, help="where the report goes (<out>/paper)")
    parser.add_argument(
        "--params",
        default="{}",
        help="JSON: the figure parameters plus preset, settings, dataset, benchmarks",
    )
    parser.add_argument("--pdf", default="auto", choices=("auto", "always", "never"))
    parser.add_argument("--provenance", type=Path, default=None, help="JSON from 'trainact provenance'")
    parser.add_argument(
        "--sensitivity",
        type=Path,
        default=None,
        help="sensitivity.json from 'trainact sensitivity' "
        "(without it: the sensitivity section says 'not run')",
    )
    parser.add_argument(
        "--schedule-axis",
        type=Path,
        default=None,
        help="schedule_axis.json from 'trainact schedule-axis' (without it: that section says 'not run')",
    )
    parser.add_argument(
        "--templates", type=Path, default=DEFAULT_TEMPLATES, help="folder of report.md.j2 and report.tex.j2"
    )
    parser.add_argument(
        "--deviations",
        type=Path,
        nargs="+",
        default=None,
        help="YAML deviation lists (default: the packaged trainact/deviations.yaml)",
    )
    parser.set_defaults(func=_cmd_paper_report)
