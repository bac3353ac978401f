"""Command line interface: ``python -m trainact <command>`` (also installed as ``trainact``).

Every workflow rule calls one of these commands. Each topic module registers its own
sub-commands through a ``register_cli(subparsers)`` function, so the CLI stays a thin
dispatcher and the options live next to the code they drive. A command imports only its own
module (``COMMANDS``), so a training job does not load matplotlib or Jinja2, and each rule
family's conda environment (``envs/``) holds only what its modules import. ``--help`` imports
them all to list every command. Commands that take a config slice accept it as canonical JSON
(``--params '{...}'``), which is exactly what the Snakemake rules put in their ``params`` so
that reruns follow config changes.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from collections.abc import Iterable
from typing import Any

from trainact.errors import UserError
from trainact.files import describe_os_error

# Command -> the topic module that registers it, in the order ``--help`` lists them.
# tests/test_cli.py checks this against what the modules register.
COMMANDS = {
    "download": "trainact.data.download",
    "prepare": "trainact.data.prepare",
    "synthetic-archive": "trainact.data.synthetic",
    "train": "trainact.training.train",
    "bench": "trainact.bench.commands",
    "ae-pretrain": "trainact.training.autoencoder",
    "ae-finetune": "trainact.training.autoencoder",
    "pso": "trainact.training.pso",
    "pso-bench": "trainact.bench.commands",
    "aggregate": "trainact.analysis.aggregate",
    "sensitivity": "trainact.analysis.sensitivity",
    "schedule-axis": "trainact.analysis.schedule_axis",
    "figures": "trainact.report.figures",
    "paper-report": "trainact.report.paper_report",
    "provenance": "trainact.report.provenance",
}
COMMAND_MODULES = tuple(dict.fromkeys(COMMANDS.values()))


class CLIError(UserError):
    """A user-facing error: printed as one line, exit status 2, no traceback."""


def parse_params(text: str | None, keys: Iterable[str] | None = None) -> dict[str, Any]:
    """Parse a ``--params`` JSON object, naming the bad text when it is not one; with ``keys``,
    a key not among them is an error that names it and the expected ones."""
    if text is None or text == "":
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CLIError(f"--params is not valid JSON ({exc}): {text!r}") from None
    if not isinstance(value, dict):
        raise CLIError(f"--params must be a JSON object, got {type(value).__name__}: {text!r}")
    if keys is not None:
        keys = list(keys)
        unknown = sorted(set(value) - set(keys))
        if unknown:
            expected = " and ".join(repr(k) for k in keys) if len(keys) <= 2 else repr(keys)
            raise CLIError(f"--params has unknown key(s) {unknown}; expected {expected}")
    return value


def requested_command(argv: list[str]) -> str | None:
    """The command named in ``argv`` (its first word that is not an option), if it is one."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def build_parser(modules: tuple[str, ...] = COMMAND_MODULES) -> argparse.ArgumentParser:
    """The parser with the sub-commands of ``modules`` (by default all of them)."""
    parser = argparse.ArgumentParser(
        prog="trainact",
        description="Reproduce Liao, 'Trainable Activation Function in Image Classification'.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="<command>")
    subparsers.required = True
    for name in modules:
        importlib.import_module(name).register_cli(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command in ``argv``; its exit status. A fault the user can cause and fix (a
    :class:`~trainact.errors.UserError`, an :class:`OSError`: a missing, unreadable or
    unwritable file, a full disk) ends in one line ``trainact <command>: error: ...`` on stderr
    and status 2, its traceback only with ``--verbose``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = requested_command(argv)
    parser = build_parser((COMMANDS[command],) if command else COMMAND_MODULES)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args) or 0)
    except (UserError, OSError) as exc:
        logging.getLogger(__name__).debug("the traceback of the error below", exc_info=True)
        message = describe_os_error(exc) if isinstance(exc, OSError) else str(exc)
        report_error(f"trainact {args.command}: error: {message}")
        return 2


def report_error(line: str) -> None:
    """Print ``line`` on stderr; where stderr cannot be written, on the stderr of the process
    that started this one, so that the reason reaches someone.

    In the workflow stderr is the job's log (``> {log} 2>&1``), which a full disk leaves empty;
    the process that started the command (Snakemake, as its job shell hands over to the command)
    writes to the terminal or the cluster job's output, so the line shows among Snakemake's
    messages just before "Error in rule". Linux only (``/proc``). Lost where that stream cannot
    take it either, and where it is a file opened without appending (``snakemake > out.txt``;
    SLURM's default ``--open-mode``): its owner's next write lands over the line.
    """
    try:
        print(line, file=sys.stderr, flush=True)
        return
    except OSError as exc:
        unwritable = exc
    try:
        with open(f"/proc/{os.getppid()}/fd/2", "a", encoding="utf-8") as parent:
            parent.write(f"{line} (printed here: its log cannot be written: {unwritable.strerror})\n")
    except OSError:
        pass
