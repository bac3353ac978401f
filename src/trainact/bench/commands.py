"""The benchmarks' command line: ``trainact bench`` (throughput, or ``--profile``) and
``trainact pso-bench`` (PSO's particle evaluators)."""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict
from typing import Any

import torch

from trainact.bench import throughput
from trainact.bench.profile import format_profile, run_profile
from trainact.bench.pso_evaluators import bench_evaluators, format_evaluator_bench
from trainact.bench.throughput import format_table, run_bench
from trainact.names import ACTIVATIONS, PAPER_FILTERS
from trainact.nn.trainable import IMPLS
from trainact.training.device import DEVICE_HELP, resolve_device


def _model_params(text: str | None) -> dict[str, Any]:
    """The model slice of ``--params '{"model": {...}}'`` (the shape ``train`` and ``pso`` take
    too, so one slice serves every command)."""
    from trainact.cli import parse_params

    params = parse_params(text, ("model",))
    return params.get("model", {})


def _cmd_bench(args: argparse.Namespace) -> int:
    from trainact.cli import CLIError

    model_cfg = _model_params(args.params)
    if args.profile:
        return _profile_command(args, model_cfg)
    try:
        results = run_bench(
            args.sizes,
            args.activations,
            batch_size=args.batch_size,
            steps=args.steps,
            warmup=args.warmup,
            device=args.device,
            impl=args.impl,
            model_cfg=model_cfg,
            progress=not args.no_progress,
        )
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=1))
        return 0
    device = resolve_device(args.device)
    print(
        f"training throughput, batch {args.batch_size}, median of {args.steps} interleaved steps, "
        f"device {device}, impl {args.impl or 'from config'}, "
        f"{torch.get_num_threads()} threads"
    )
    print(format_table(results))
    if args.pso:
        # PSO's two particle evaluators (Section 5.2), also side by side in this process, on the
        # paper's PSO setting: the middle ReLU CNN (or the first size benched), 10 particles,
        # a 1,000-image fitness batch. `trainact pso-bench` varies these.
        size = "middle" if "middle" in args.sizes else args.sizes[0]
        result = bench_evaluators(
            size=size,
            device=args.device,
            model_cfg=model_cfg,
            progress=not args.no_progress,
        )
        print()
        print(format_evaluator_bench(result))
    return 0


def _cmd_pso_bench(args: argparse.Namespace) -> int:
    from trainact.cli import CLIError

    for flag in ("particles", "batch_size", "chunk_size", "repeats"):
        if getattr(args, flag) < 1:
            raise CLIError(f"--{flag.replace('_', '-')} {getattr(args, flag)}: must be >= 1")
    try:
        result = bench_evaluators(
            size=args.size,
            activation=args.activation,
            particles=args.particles,
            batch_size=args.batch_size,
            chunk_size=args.chunk_size,
            repeats=args.repeats,
            device=args.device,
            model_cfg=_model_params(args.params),
            progress=not args.no_progress,
        )
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    print(json.dumps(result, indent=1) if args.json else format_evaluator_bench(result))
    return 0


def _profile_command(args: argparse.Namespace, model_cfg: dict) -> int:
    from trainact.cli import CLIError

    try:
        profiles = run_profile(
            args.sizes,
            args.activations,
            batch_size=args.batch_size,
            eval_batch_size=args.eval_batch_size,
            model_cfg=model_cfg,
            impl=args.impl,
            timing_steps=args.steps,
        )
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    if args.json:
        rows = [{**asdict(p), "host_us_per_launch": p.host_us_per_launch} for p in profiles]
        for row in rows:  # not timed (--steps 0): null, as JSON has no NaN
            for key in ("host_ms", "host_us_per_launch"):
                row[key] = None if math.isnan(row[key]) else row[key]
        print(json.dumps(rows, indent=1))
    else:
        print(format_profile(profiles))
    return 0


def register_cli(subparsers: Any) -> None:
    """Add ``bench`` and ``pso-bench`` to the ``trainact`` CLI."""
    _add_bench(subparsers)
    _add_pso_bench(subparsers)


def _add_bench(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="training throughput of each size x activation, relative to ReLU",
        description=throughput.__doc__.split("\n\n")[1],
    )
    parser.add_argument("--sizes", nargs="+", default=list(PAPER_FILTERS), choices=list(PAPER_FILTERS))
    parser.add_argument("--activations", nargs="+", default=list(ACTIVATIONS), choices=list(ACTIVATIONS))
    parser.add_argument("--batch-size", type=int, default=128)
    _add_profile_arguments(parser)
    parser.add_argument(
        "--steps",
        type=int,
        default=20,
        help="timed steps per network (median taken; with --profile: steps of the CPU-side "
        "timing, the fastest taken, 0 = none)",
    )
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per network (compilation)")
    parser.add_argument(
        "--device",
        default="auto",
        help="auto (CUDA if available), cpu, cuda, cuda:1, ...",
    )
    parser.add_argument(
        "--impl",
        default=None,
        choices=list(IMPLS),
        help="activation implementation (default: the --params impl, else auto)",
    )
    parser.add_argument(
        "--params",
        default=None,
        help='JSON: {"model": {...}}, the model config slice (keys of build_model)',
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of the table")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument(
        "--no-pso",
        dest="pso",
        action="store_false",
        help="skip the comparison of PSO's vectorised and looped particle evaluation that "
        "follows the table (not in --json; `trainact pso-bench --json` gives it)",
    )
    parser.set_defaults(func=_cmd_bench)


def _add_profile_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``trainact bench --profile``."""
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead of timing: count each network's FLOPs and kernel launches per training "
        "step and per evaluation batch (on the meta device, so the same on any machine), and "
        "time the step's CPU-side cost here; no PSO comparison",
    )
    parser.add_argument(
        "--eval-batch-size",
        type=int,
        default=1000,
        help="images per evaluation batch counted by --profile (train.eval_batch_size)",
    )


def _add_pso_bench(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "pso-bench",
        help="time vectorised against looped PSO fitness evaluation",
        description="Interleaved timing of the two particle evaluators in one process; prints medians.",
    )
    parser.add_argument("--particles", type=int, default=10)
    parser.add_argument("--size", default="middle", help="small | middle | large")
    parser.add_argument("--activation", default="relu", help="relu | fourier | lc")
    parser.add_argument("--batch-size", type=int, default=1000, help="fitness batch (images)")
    parser.add_argument("--chunk-size", type=int, default=500, help="images per forward pass")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default=None, help=DEVICE_HELP)
    parser.add_argument("--params", default="{}", help='JSON: {"model": {...}} (filters, hidden, impl)')
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=_cmd_pso_bench)
