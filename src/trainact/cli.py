"""Command line interface: ``python -m trainact <command>`` (also installed as ``trainact``).

Every workflow rule calls one of these commands. Each topic module registers its own
sub-commands through a ``register_cli(subparsers)`` function, so the CLI stays a thin
dispatcher and the options live next to the code they drive. Commands that take a
config slice accept it as canonical JSON (``--params '{...}'``), which is exactly what
the Snakemake rules put in their ``params`` so that reruns follow config changes.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from typing import Any

# Topic modules that contribute sub-commands, in the order ``--help`` lists them.
COMMAND_MODULES = (
    "trainact.data",
    "trainact.train",
    "trainact.bench",
    "trainact.autoencoder",
    "trainact.pso",
    "trainact.aggregate",
    "trainact.figures",
    "trainact.report",
    "trainact.provenance",
)


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2, no traceback."""


def parse_params(text: str | None) -> dict[str, Any]:
    """Parse a ``--params`` JSON object, naming the bad text when it is not one."""
    if text is None or text == "":
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CLIError(f"--params is not valid JSON ({exc}): {text!r}") from None
    if not isinstance(value, dict):
        raise CLIError(f"--params must be a JSON object, got {type(value).__name__}: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trainact",
        description="Reproduce Liao, 'Trainable Activation Function in Image Classification'.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="<command>")
    subparsers.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # the topic module itself is not there (yet)
                continue
            raise
        register = getattr(module, "register_cli", None)
        if register is not None:
            register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args) or 0)
    except CLIError as exc:
        print(f"trainact {args.command}: error: {exc}", file=sys.stderr)
        return 2
