"""The CUDA-graph training step on a real GPU: what the CPU tests cannot show.

    python tools/graph_step_check.py                   # on a GPU: cuda_graph against ordinary
    python tools/graph_step_check.py --device cpu --epochs 2 --images 200   # its logic: static

Per activation: the paper's small network, ``--images`` random images in batches of 128 (a short
last batch), ``--epochs`` epochs with the learning rate cut after half of them; trained once with
the ordinary step and once with the graph step (``static`` on the CPU), from the same start, under
the trainer's determinism settings. Reports whether the weights and the epochs' sums are equal bit
for bit, the graph stepper's record (graphs captured, fallback) and the steps per second of each
mode over the epochs after the first (the graphs' warm-up and capture). JSON on stdout, and in
``$OUT/graph_step_check.json`` when ``OUT`` is set. Exit status 0 when no graph was given up.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from trainact.data.loader import DeviceDataset
from trainact.nn.models import build_model
from trainact.training.graph_step import TrainStepper
from trainact.training.job import configure_determinism
from trainact.training.random_state import seed_everything
from trainact.training.step import rmsprop


def train(activation: str, mode: str, data: DeviceDataset, epochs: int) -> dict:
    seed_everything(0)
    model = build_model("small", activation, {}).to(data.device)
    optimizer = rmsprop(model.parameters(), lr=1e-3, rho=0.95, eps=1e-7)
    stepper = TrainStepper(model, nn.CrossEntropyLoss(), optimizer, data, mode=mode)
    sums, rates = [], []
    for epoch in range(1, epochs + 1):
        for group in optimizer.param_groups:
            group["lr"] = 1e-3 if epoch <= epochs // 2 else 1e-4
        totals = stepper.epoch_totals()
        started = time.perf_counter()
        steps = 0
        for index in data.batch_indices(128, seed=0, epoch=epoch):
            stepper.step(index)
            steps += 1
        sums.append((totals.loss_sum.item(), totals.correct.item()))  # synchronises
        rates.append(steps / (time.perf_counter() - started))
    weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return {"weights": weights, "sums": sums, "steps_per_s": rates, "record": stepper.record()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--activations", default="relu,fourier,lc")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    configure_determinism(device)
    graph_mode = "cuda_graph" if device.type == "cuda" else "static"
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.images, 3, 32, 32)).astype(np.uint8)
    data = DeviceDataset(images, rng.integers(0, 10, args.images), device)
    report, ok = {"device": str(device), "torch": torch.__version__, "networks": {}}, True
    for activation in args.activations.split(","):
        ordinary = train(activation, "ordinary", data, args.epochs)
        graphed = train(activation, graph_mode, data, args.epochs)
        same = all(torch.equal(ordinary["weights"][k], graphed["weights"][k]) for k in ordinary["weights"])
        report["networks"][activation] = {
            "weights_equal": same,
            "sums_equal": ordinary["sums"] == graphed["sums"],
            "max_weight_difference": max(
                float((ordinary["weights"][k].double() - graphed["weights"][k].double()).abs().max())
                for k in ordinary["weights"]
                if ordinary["weights"][k].is_floating_point()
            ),
            "record": graphed["record"],
            "steps_per_s": {
                "ordinary": round(
                    float(np.median(ordinary["steps_per_s"][1:] or ordinary["steps_per_s"])), 1
                ),
                graph_mode: round(float(np.median(graphed["steps_per_s"][1:] or graphed["steps_per_s"])), 1),
            },
        }
        ok = ok and graphed["record"]["fallback"] is None
        print(activation, json.dumps(report["networks"][activation]), file=sys.stderr, flush=True)
    text = json.dumps(report, indent=1)
    print(text)
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "graph_step_check.json").write_text(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
