"""The activation health's signals are subsampled on the model's device before any copy to the
host (trainact.nn.calibration.layer_signals): the health rows must be exactly those of the former
code, which copied every value to the host and subsampled there (kept below as the reference)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainact.nn import calibration as cal
from trainact.nn.models import build_model
from trainact.training.random_state import seed_everything
from trainact.training.results import health_rows


def former_layer_signals(model, images, only=None, chunk=cal.CALIBRATION_CHUNK):
    """``layer_signals`` as it was: every value to the host, float64, then the stride subsample."""
    layers = [(name, module) for name, module in cal.activation_layers(model) if only in (None, name)]
    names = {module: name for name, module in layers}
    captured = {name: [] for name in names.values()}

    def hook(module, inputs, output):
        captured[names[module]].append(
            (inputs[0].detach().reshape(-1).cpu(), output.detach().reshape(-1).cpu())
        )

    handles = [module.register_forward_hook(hook) for module in names]
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            for start in range(0, images.shape[0], chunk):
                model(images[start : start + chunk].to(device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    signals = {}
    for name, parts in captured.items():
        x = torch.cat([part[0] for part in parts]).double()
        y = torch.cat([part[1] for part in parts]).double()
        stride = max(1, x.numel() // cal.SIGNAL_SAMPLES)
        signals[name] = (x[::stride], y[::stride])
    return signals


def trained_a_little(activation: str, size: str = "small", model_params=None):
    """A network after calibration and a few RMSProp steps (parameters away from the start)."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (300, 3, 32, 32)).astype(np.uint8)
    seed_everything(0)
    model = build_model(size, activation, {"impl": "eager", **(model_params or {})})
    cal.calibrate(model, images, seed=0)
    start = [cal.parameter_vector(m) for _, m in cal.activation_layers(model)]
    batch = cal.calibration_batch(images, 0)[: cal.HEALTH_IMAGES]
    optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.95, eps=1e-7)
    for _ in range(2):
        loss = torch.nn.functional.cross_entropy(model(batch[:32]), torch.arange(32) % 10)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model, batch, start


def layer_values(model, batch) -> list[int]:
    """How many values each activation layer's input has for ``batch``."""
    sizes = []
    handles = [
        module.register_forward_hook(lambda module, inputs, output: sizes.append(inputs[0].numel()))
        for _, module in cal.activation_layers(model)
    ]
    with torch.no_grad():
        model(batch)
    for handle in handles:
        handle.remove()
    return sizes


@pytest.mark.parametrize("activation", ["fourier", "lc", "relu"])
def test_health_rows_are_those_of_the_host_side_subsample(activation, monkeypatch):
    """The paper's small CNN on the 256 health images: its convolution layers have more than
    SIGNAL_SAMPLES values (stride > 1), the dense layer fewer (stride 1)."""
    model, batch, start = trained_a_little(activation)
    new = health_rows(3, model, batch, start)
    new_raw = cal.layer_health(model, batch, start)
    assert max(layer_values(model, batch)) > 2 * cal.SIGNAL_SAMPLES > min(layer_values(model, batch))
    monkeypatch.setattr(cal, "layer_signals", former_layer_signals)
    assert health_rows(3, model, batch, start) == new
    assert cal.layer_health(model, batch, start) == new_raw  # unrounded, exactly


@pytest.mark.parametrize("chunk", [7, 64, 256])
@pytest.mark.parametrize("samples", [1000, 4096])
def test_signals_equal_the_former_ones_across_chunk_boundaries(chunk, samples, monkeypatch):
    """Strides that do not divide the chunks' sizes: each chunk's subsample starts where the
    stride falls in it. Equal values, and equal statistics bit for bit."""
    model, batch, _ = trained_a_little(
        "fourier", model_params={"filters": {"small": [4, 6, 8]}, "hidden": 24}
    )
    batch = batch[:50]
    monkeypatch.setattr(cal, "SIGNAL_SAMPLES", samples)
    new = cal.layer_signals(model, batch, chunk=chunk)
    old = former_layer_signals(model, batch, chunk=chunk)
    assert list(new) == list(old)
    for name in old:
        for a, b in zip(new[name], old[name], strict=True):
            assert a.dtype == b.dtype == torch.float64 and torch.equal(a, b)
            for statistic in (torch.mean, torch.sum, lambda t: t.std(unbiased=False)):
                assert torch.equal(statistic(a), statistic(b))
    only = next(iter(old))
    assert all(
        torch.equal(a, b)
        for a, b in zip(cal.layer_signals(model, batch, only=only, chunk=chunk)[only], old[only], strict=True)
    )


def test_only_the_subsample_is_copied_to_the_host(monkeypatch):
    """What crosses to the host per layer: about SIGNAL_SAMPLES values of input and of output,
    not the layer's whole input and output."""
    model, batch, _ = trained_a_little("fourier")
    copied = []
    original = torch.Tensor.to

    def counting_to(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        if args[:1] == ("cpu",):  # the copies to the host (on a GPU, a transfer)
            copied.append(out.numel())
        return out

    monkeypatch.setattr(torch.Tensor, "to", counting_to)
    signals = cal.layer_signals(model, batch)
    monkeypatch.undo()
    assert sum(copied) == sum(x.numel() + y.numel() for x, y in signals.values())
    assert max(copied) <= 2 * cal.SIGNAL_SAMPLES
