"""The prepared GPU check: one command, a few minutes on one GPU, one JSON summary.

    make gpu-check                      # = python tools/gpu_check.py (device cuda)
    python tools/gpu_check.py --device cpu --skip bench,smoke --images 500   # its logic, on a CPU

Steps (each timed; a failing step is recorded and the others still run):

1. ``environment``: torch, CUDA build, driver, the GPUs, and what ``trainact.training.device`` decides.
2. ``bench``: ``trainact bench --json`` (training steps per second of the nine networks, with the
   default kernels) and ``trainact pso-bench --json`` (PSO's vectorised against looped fitness).
3. ``smoke``: the smoke preset through Snakemake with ``--resources gpu=1`` (every rule, the GPU
   jobs sharing the GPU); every training run's ``summary.json`` must name the GPU.
4. ``resume``: ``trainact train`` killed (SIGKILL) after its first checkpoint, run again, and
   compared with an uninterrupted run: the histories and the weights must be equal bit for bit.
5. ``sharing``: one training alone, then ``--jobs`` identical ones at once on the same GPU; the
   throughput ratio (jobs x time alone / time together) and the GPU slot each job claimed.
6. ``graph``: each of the 9 networks (sizes x activations) trained ``--graph-steps`` steps with the
   ordinary step and with CUDA graphs (:mod:`trainact.training.graph_step`) from the same start:
   weights equal bit for bit, the graph stepper's record (fallback or not), milliseconds per step
   of each (the steps after the graphs' warm-up and capture).
7. ``packs``: small networks trained by ``trainact train`` as packs of 1, 3 and 9 networks (one
   process each) against the same networks one per process (at most ``--jobs`` at once, as
   Snakemake runs them with devices.jobs_per_gpu): wall time and images per second.
8. ``estimate``: the paper preset's wall time on this GPU (:mod:`trainact.bench.estimate`) from
   the graph step's milliseconds per step and the packs' measured speed-up.

Prints the summary as JSON on stdout and writes it to ``$OUT/gpu_check.json`` when ``OUT`` is set.
Exit status 0 when every step that ran passed.

On the lent GPU machine (the ``device`` tool: Python 3.12 with torch, no Snakemake, no network),
first build the missing wheels here with ``make device-wheels``, then run, carrying ``.whl``:

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl &&
    export PYTHONPATH=/tmp/site PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1 &&
    python3 tools/gpu_check.py 2>&1 | tee $OUT/gpu_check.log
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SRC = REPO / "src"
sys.path.insert(0, str(SRC))

STEPS = ("environment", "bench", "smoke", "resume", "sharing", "graph", "packs", "estimate")


def environment(device: str) -> dict:
    import torch

    from trainact.training import device as device_policy

    info = {
        "torch": torch.__version__,
        "cuda_build": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "driver": device_policy.nvidia_driver_version(),
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if torch.cuda.is_available()
        else [],
        "cpu_cores": os.cpu_count(),
    }
    try:
        chosen = device_policy.resolve_device(device)
        info["device"] = device_policy.device_description(chosen)
    except device_policy.DeviceUnavailable as exc:
        info["device_error"] = str(exc)
        raise RuntimeError(str(exc)) from None
    return info


def env(device: str, **extra: str) -> dict:
    base = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    base.update({"TRAINACT_DEVICE": device, **extra})
    return base


def run(args: list[str], device: str, timeout: float, **extra: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        args, cwd=REPO, env=env(device, **extra), capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])}... exited {result.returncode}: {result.stderr[-2000:]}")
    return result


def bench(device: str) -> dict:
    py = [sys.executable, "-m", "trainact"]
    training = run(py + ["bench", "--json", "--no-progress", "--device", device], device, 300)
    pso = run(py + ["pso-bench", "--json", "--no-progress", "--device", device], device, 120)
    return {"training": json.loads(training.stdout), "pso": json.loads(pso.stdout)}


def smoke(device: str, work: Path) -> dict:
    results = work / "smoke-results"
    override = work / "smoke-override.yaml"
    override.write_text(f"results: {results}\ndevices: {{policy: {device}}}\n")
    started = time.perf_counter()
    run(
        [sys.executable, "-m", "snakemake", "--cores", str(min(os.cpu_count() or 2, 8)),
         "--resources", "gpu=1", "--configfile", "workflow/presets/smoke.yaml", str(override),
         "--quiet", "rules"],
        device, 480,
    )  # fmt: skip
    wall = time.perf_counter() - started
    summaries = sorted(results.glob("**/summary.json"))
    devices = [json.loads(p.read_text()).get("device", {}) for p in summaries
               if p.parent.name.startswith("seed") or p.parent.name == "finetune"]  # fmt: skip
    wrong = [d for d in devices if d.get("type") != torch_device_type(device)]
    if wrong or not devices:
        raise RuntimeError(f"{len(wrong)} of {len(devices)} runs not on {device}: {wrong[:3]}")
    return {"wall_s": round(wall, 1), "runs": len(devices), "device": devices[0].get("name")}


def torch_device_type(device: str) -> str:
    return "cuda" if device.startswith("cuda") or device == "auto" else device


def tiny_data(path: Path, n_train: int, n_test: int) -> Path:
    """Learnable random images (a colour per class), as ``trainact prepare`` writes them."""
    import numpy as np

    rng = np.random.default_rng(0)

    def split(n):
        labels = rng.integers(0, 10, n)
        images = (labels[:, None, None, None] * 20 + rng.integers(0, 50, (n, 3, 32, 32))).clip(0, 255)
        return images.astype(np.uint8), labels.astype(np.int64)

    train_images, train_labels = split(n_train)
    test_images, test_labels = split(n_test)
    np.savez(path, train_images=train_images, train_labels=train_labels, test_images=test_images,
             test_labels=test_labels, class_names=np.array([f"c{i}" for i in range(10)]),
             source_md5=np.array("0" * 32))  # fmt: skip
    return path


def train_params(epochs: int) -> dict:
    """The check's training settings: ``epochs`` epochs at 1e-3 in batches of 128."""
    return {
        "train": {
            "epochs": epochs,
            "batch_size": 128,
            "lr_boundaries": [epochs],
            "learning_rates": [1e-3, 1e-4],
        }
    }


def train_command(data: Path, out: Path, activation: str, epochs: int, seed: int = 0) -> list[str]:
    params = train_params(epochs)
    return [sys.executable, "-m", "trainact", "train", "--data", str(data), "--size", "small",
            "--activation", activation, "--seed", str(seed), "--params", json.dumps(params),
            "--out-dir", str(out), "--no-progress"]  # fmt: skip


def resume(device: str, work: Path, activations: list[str], images: int) -> dict:
    import torch

    data = tiny_data(work / "resume.npz", images, images // 5)
    outcome = {}
    for activation in activations:
        full, split = work / f"full-{activation}", work / f"split-{activation}"
        run(train_command(data, full, activation, 4), device, 300, TRAINACT_CHECKPOINT_INTERVAL="0")
        process = subprocess.Popen(
            train_command(data, split, activation, 4), cwd=REPO, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, env=env(device, TRAINACT_CHECKPOINT_INTERVAL="0"),
        )  # fmt: skip
        deadline = time.monotonic() + 300
        while (
            not (split / "checkpoint.pt").exists() and process.poll() is None and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        killed_after = (
            len((split / "history.csv").read_text().splitlines()) - 1
            if (split / "history.csv").exists()
            else 0
        )
        process.send_signal(signal.SIGKILL)
        process.wait()
        run(train_command(data, split, activation, 4), device, 300, TRAINACT_CHECKPOINT_INTERVAL="0")
        same_history = (full / "history.csv").read_text().splitlines()
        resumed_history = (split / "history.csv").read_text().splitlines()
        columns = same_history[0].split(",")
        keep = [i for i, c in enumerate(columns) if c not in ("seconds", "images_per_s")]

        def results(lines, keep=keep):
            return [[line.split(",")[i] for i in keep] for line in lines]

        a = torch.load(full / "model.pt")
        b = torch.load(split / "model.pt")
        outcome[activation] = {
            "killed_after_epochs": killed_after,
            "history_equal": results(same_history) == results(resumed_history),
            "weights_equal": all(torch.equal(a[k], b[k]) for k in a),
            "max_weight_difference": max(float((a[k].float() - b[k].float()).abs().max()) for k in a),
            "kernels": json.loads((split / "summary.json").read_text()).get("activation_kernels"),
        }
        if not (outcome[activation]["history_equal"] and outcome[activation]["weights_equal"]):
            raise RuntimeError(f"resumed {activation} run differs: {outcome[activation]}")
    return outcome


def sharing(device: str, work: Path, jobs: int, images: int) -> dict:
    data = tiny_data(work / "sharing.npz", 4 * images, images // 5)
    slots = work / "slots"

    def launch(name: str, seed: int) -> subprocess.Popen:
        return subprocess.Popen(
            train_command(data, work / name, "relu", 3, seed), cwd=REPO, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True, env=env(device, TRAINACT_GPU_SLOTS=str(slots)),
        )  # fmt: skip

    def wait(processes) -> None:
        for process in processes:
            _, err = process.communicate(timeout=480)
            if process.returncode != 0:
                raise RuntimeError(f"sharing job exited {process.returncode}: {err[-1500:]}")

    started = time.perf_counter()
    wait([launch("alone", 0)])
    alone = time.perf_counter() - started
    started = time.perf_counter()
    wait([launch(f"shared{i}", i) for i in range(jobs)])
    together = time.perf_counter() - started
    devices = [json.loads((work / f"shared{i}" / "summary.json").read_text())["device"] for i in range(jobs)]
    return {
        "jobs": jobs,
        "alone_s": round(alone, 1),
        "together_s": round(together, 1),
        "throughput_ratio": round(jobs * alone / together, 2),
        "slots": sorted((d.get("index"), d.get("slot")) for d in devices),
    }


def graph(device: str, steps: int, images: int, only: list[str] | None = None) -> dict:
    """Ordinary step against the graph step (static buffers on a CPU), per network."""
    import numpy as np
    import torch
    from torch import nn

    from trainact.data.loader import DeviceDataset
    from trainact.names import ACTIVATIONS, SIZES
    from trainact.nn.models import build_model
    from trainact.training.graph_step import TrainStepper
    from trainact.training.job import configure_determinism
    from trainact.training.random_state import seed_everything
    from trainact.training.step import rmsprop

    torch_device = torch.device(torch_device_type(device))
    configure_determinism(torch_device)
    graph_mode = "cuda_graph" if torch_device.type == "cuda" else "static"
    rng = np.random.default_rng(0)
    data = DeviceDataset(
        rng.integers(0, 256, (images, 3, 32, 32)).astype(np.uint8), rng.integers(0, 10, images), torch_device
    )

    def train(size: str, activation: str, mode: str) -> dict:
        seed_everything(0)
        model = build_model(size, activation, {}).to(torch_device)
        optimizer = rmsprop(model.parameters(), lr=1e-3, rho=0.95, eps=1e-7)
        stepper = TrainStepper(model, nn.CrossEntropyLoss(), optimizer, data, mode=mode)
        stepper.epoch_totals()
        done, epoch, timed_from, started = 0, 0, steps // 4, 0.0
        while done < steps:
            epoch += 1
            for index in data.batch_indices(128, seed=0, epoch=epoch, drop_last=True):
                if done == timed_from:  # after warm-up and capture
                    if torch_device.type == "cuda":
                        torch.cuda.synchronize(torch_device)
                    started = time.perf_counter()
                stepper.step(index)
                done += 1
                if done == steps:
                    break
        if torch_device.type == "cuda":
            torch.cuda.synchronize(torch_device)
        ms = 1000 * (time.perf_counter() - started) / (steps - timed_from)
        weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        return {"weights": weights, "ms_per_step": ms, "record": stepper.record()}

    networks, failures = {}, []
    for size in SIZES:
        for activation in ACTIVATIONS:
            if only and f"{size}-{activation}" not in only:
                continue
            ordinary = train(size, activation, "ordinary")
            graphed = train(size, activation, graph_mode)
            equal = all(
                torch.equal(ordinary["weights"][k], graphed["weights"][k]) for k in ordinary["weights"]
            )
            name = f"{size}-{activation}"
            networks[name] = {
                "weights_equal": equal,
                "ms_per_step": {
                    "ordinary": round(ordinary["ms_per_step"], 3),
                    graph_mode: round(graphed["ms_per_step"], 3),
                },
                "speedup": round(ordinary["ms_per_step"] / graphed["ms_per_step"], 2),
                "record": graphed["record"],
            }
            print(f"gpu-check: graph {name} {json.dumps(networks[name])}", file=sys.stderr, flush=True)
            if not equal or graphed["record"].get("fallback"):
                failures.append(name)
    if failures:
        raise RuntimeError(f"graph step differs or fell back for {failures}: {networks}")
    return {"steps": steps, "mode": graph_mode, "networks": networks}


def packs(device: str, work: Path, jobs: int, images: int, counts: list[int], epochs: int = 3) -> dict:
    """Packs of 1, 3 and 9 small networks (one process each) against one network per process."""
    data = tiny_data(work / "packs.npz", images, images // 10)
    networks = [(a, s) for s in (0, 1, 2) for a in ("relu", "fourier", "lc")]
    params = train_params(epochs)

    def command(members, root: Path) -> list[str]:
        activations = sorted({a for a, _ in members}, key=[n for n, _ in networks].index)
        seeds = sorted({s for _, s in members})
        folders = [str(root / f"{a}-{s}") for a in activations for s in seeds]
        return [sys.executable, "-m", "trainact", "train", "--data", str(data), "--size", "small",
                "--activation", *activations, "--seed", *map(str, seeds), "--params", json.dumps(params),
                "--out-dir", *folders, "--no-progress"]  # fmt: skip

    def timed(commands: list[list[str]], at_once: int) -> float:
        started, waiting = time.perf_counter(), list(commands)
        running: list[subprocess.Popen] = []
        while waiting or running:
            while waiting and len(running) < at_once:
                running.append(
                    subprocess.Popen(waiting.pop(0), cwd=REPO, env=env(device), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
                )  # fmt: skip
            process = running.pop(0)
            _, err = process.communicate(timeout=480)
            if process.returncode != 0:
                raise RuntimeError(f"training exited {process.returncode}: {err[-1500:]}")
        return time.perf_counter() - started

    # Warm the compile cache first, so that neither side pays the kernels' compilation alone.
    timed([command(networks[: min(3, max(counts))], work / "warm")], 1)
    result = {"images": images, "epochs": epochs}
    for n in counts:
        members = networks[:n]
        packed = timed([command(members, work / f"pack{n}")], 1)
        single = timed([command([m], work / f"single{n}") for m in members], jobs)
        trained = n * epochs * images
        result[f"pack{n}"] = {
            "pack_s": round(packed, 1),
            "one_per_process_s": round(single, 1),
            "pack_images_per_s": round(trained / packed),
            "one_per_process_images_per_s": round(trained / single),
            "speedup": round(single / packed, 2),
        }
        print(f"gpu-check: packs {n} {json.dumps(result[f'pack{n}'])}", file=sys.stderr, flush=True)
    return result


def estimate(summary: dict) -> dict:
    """The paper preset's wall time from the graph step's ms per step and the packs' speed-up."""
    import yaml

    from trainact.bench.estimate import preset_estimate

    graph_result = summary["steps"].get("graph", {}).get("result")
    pack_result = summary["steps"].get("packs", {}).get("result")
    if not graph_result:
        raise RuntimeError("needs the graph step's milliseconds per step")
    if len(graph_result["networks"]) < 9:
        ran = sorted(graph_result["networks"])
        raise RuntimeError(f"needs all 9 networks' step times; the graph step ran {ran}")
    mode = graph_result["mode"]
    step_ms = {
        tuple(name.split("-")): network["ms_per_step"][mode]
        for name, network in graph_result["networks"].items()
    }
    # The workflow packs the seeds of a network (3 in the paper preset): the pack of 3's speed-up.
    speedup = pack_result["pack3"]["speedup"] if pack_result and "pack3" in pack_result else 1.0
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    return preset_estimate(step_ms, config, pack_speedup=max(speedup, 1.0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu to check the logic")
    parser.add_argument("--skip", default="", help=f"comma-separated steps to skip: {', '.join(STEPS)}")
    parser.add_argument("--jobs", type=int, default=4, help="jobs sharing the device in the sharing step")
    parser.add_argument(
        "--images", type=int, default=5000, help="training images of the resume step (sharing: 4x)"
    )
    parser.add_argument(
        "--resume-activations", default="relu,fourier", help="networks of the resume step (comma-separated)"
    )
    parser.add_argument("--graph-steps", type=int, default=200, help="steps per network of the graph step")
    parser.add_argument(
        "--graph-networks", default="", help="size-activation,... of the graph step (default: all 9)"
    )
    parser.add_argument("--pack-images", type=int, default=20000, help="training images of the packs step")
    parser.add_argument("--pack-counts", default="1,3,9", help="networks per pack in the packs step (of 9)")
    args = parser.parse_args(argv)
    skip = {s for s in args.skip.split(",") if s}
    unknown = skip - set(STEPS)
    if unknown:
        parser.error(f"unknown steps {sorted(unknown)}; known: {', '.join(STEPS)}")
    summary: dict = {"device": args.device, "steps": {}}
    with tempfile.TemporaryDirectory(prefix="trainact-gpu-check-") as tmp:
        work = Path(tmp)
        os.environ.setdefault("TRAINACT_COMPILE_CACHE", str(work / "compile-cache"))
        steps = {
            "environment": lambda: environment(args.device),
            "bench": lambda: bench(args.device),
            "smoke": lambda: smoke(args.device, work),
            "resume": lambda: resume(args.device, work, args.resume_activations.split(","), args.images),
            "sharing": lambda: sharing(args.device, work, args.jobs, args.images),
            "graph": lambda: graph(
                args.device,
                args.graph_steps,
                max(args.images, 128 * 8),
                [n for n in args.graph_networks.split(",") if n],
            ),
            "packs": lambda: packs(
                args.device, work, args.jobs, args.pack_images, [int(n) for n in args.pack_counts.split(",")]
            ),
            "estimate": lambda: estimate(summary),
        }
        for name in STEPS:
            if name in skip:
                continue
            started = time.perf_counter()
            try:
                result = {"ok": True, "result": steps[name]()}
            except Exception as exc:  # recorded, and the next step runs
                result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            result["seconds"] = round(time.perf_counter() - started, 1)
            summary["steps"][name] = result
            print(
                f"gpu-check: {name} {'ok' if result['ok'] else 'FAILED'} in {result['seconds']} s",
                file=sys.stderr,
            )
    summary["ok"] = all(step["ok"] for step in summary["steps"].values())
    text = json.dumps(summary, indent=1)
    print(text)
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "gpu_check.json").write_text(text)
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
