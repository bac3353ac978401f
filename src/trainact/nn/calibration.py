"""Data-dependent start of a network: input standardisation and Fourier layers scaled to their input.

Why: at PyTorch's default weights and ``[0, 1]`` pixels the pre-activations of the paper's CNNs
are small (root mean square about 0.3 in the first layer, 0.04-0.13 in the later ones of the
middle CNN). A Fourier series fitted to ReLU on a fixed ``[-4, 4]`` is almost a straight line on
that range, so a "Fourier-CNN that starts as the ReLU network" would really start almost linear.
:func:`calibrate` measures each activation layer's own input and, for a Fourier layer with
``init = "calibrated"`` (not the default ``"relu_fit"``, which it leaves as it is), sets the fixed
scale ``s`` of ``act(x) = s g(x / s)`` so that the ReLU fit ``g`` covers that input; the fitted
coefficients themselves are not changed.

One call after ``build_model`` (which follows ``seed_everything``), before training:

1. Input standardisation (``model.preprocessing = "standardize"``): per-channel mean and standard
   deviation of the *training* images (all of them, never the test split), stored in the model's
   :class:`~trainact.nn.models.InputStandardization` buffers, so ``model.pt`` carries them.
2. Calibration batch: :data:`CALIBRATION_IMAGES` training images drawn with a generator seeded by
   ``seed`` (the global RNG is not touched, so the rest of the run is what it would be without
   calibration: a ReLU network trains bit for bit as before).
3. For each activation layer in order from the input (one forward pass of the batch, a pre-hook
   per layer, so every layer sees the output of the already calibrated layers before it) the
   layer's input is measured: mean, standard deviation, root mean square ``r``. A Fourier layer
   with ``init = "calibrated"`` gets the fixed scale that maps its ReLU fit's interval onto
   ``[-k r, k r]`` (:meth:`~trainact.nn.fourier.Fourier.set_scale`, ``k`` its
   ``calibration_sigmas``; :mod:`trainact.nn.fourier` says why a scale and not a refit). The interval
   is symmetric about 0 because ReLU's kink is at 0 whatever the input's mean; ``r`` (not the
   standard deviation) so that a shifted input still lies inside.

The measurements are returned (and the trainer writes them into ``activations.json``); the same
batch serves the per-epoch activation health (:func:`layer_health`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from trainact.nn.fourier import Fourier
from trainact.nn.linear_combination import LinearCombination

#: Training images in the calibration batch (and the health batch). 1,024 images give each
#: layer at least 131,072 pre-activations (the dense layer: 1,024 x 128), enough for a root mean
#: square within about 1 % of the training set's.
CALIBRATION_IMAGES = 1024
#: The first this many calibration images measure the activation health after every epoch: a
#: quarter of the batch keeps the per-epoch cost small, and even the narrowest layer still gives
#: 32,768 values (the dense layer: 256 x 128).
HEALTH_IMAGES = 256
#: Images per forward pass while measuring (bounds memory; does not change results).
CALIBRATION_CHUNK = 256
#: Values per layer kept for the measurements (a fixed-stride subsample beyond this): bounds
#: memory at about 4 MB per layer whatever the network's width.
SIGNAL_SAMPLES = 1 << 18
#: Standardisation statistics are accumulated over the training images in chunks of this size.
STATISTICS_CHUNK = 5000


def calibration_indices(num_train: int, seed: int, count: int = CALIBRATION_IMAGES) -> Tensor:
    """The training-image indices of the calibration batch: ``count`` distinct ones (all when the
    set is smaller), drawn by a CPU generator seeded with ``seed``, sorted."""
    generator = torch.Generator(device="cpu").manual_seed(int(seed) + 0x5EED)
    order = torch.randperm(int(num_train), generator=generator)
    return order[: min(int(count), int(num_train))].sort().values


def calibration_batch(
    train_images: np.ndarray | Tensor, seed: int, count: int = CALIBRATION_IMAGES
) -> Tensor:
    """Float ``(B, 3, 32, 32)`` in ``[0, 1]`` on the CPU: the seeded calibration images."""
    images = torch.as_tensor(train_images)
    index = calibration_indices(images.shape[0], seed, count)
    return images.index_select(0, index).to(torch.float32).div_(255.0)


def channel_statistics(train_images: np.ndarray | Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel mean and standard deviation (float64, shape ``(C,)``) of uint8 images in
    ``[0, 1]`` scale, over every image and pixel given (the training split)."""
    images = torch.as_tensor(train_images)
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(f"images must be a non-empty (N, C, H, W) array, got {tuple(images.shape)}")
    total = torch.zeros(images.shape[1], dtype=torch.float64)
    total_sq = torch.zeros_like(total)
    for start in range(0, images.shape[0], STATISTICS_CHUNK):
        chunk = images[start : start + STATISTICS_CHUNK].to(torch.float64).div_(255.0)
        total += chunk.sum(dim=(0, 2, 3))
        total_sq += chunk.square().sum(dim=(0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / count
    std = (total_sq / count - mean.square()).clamp_min(0).sqrt()
    return mean, std


def activation_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(qualified name, module)`` of every activation layer of ``model``, input to output."""
    return list(model.activation_modules())


def layer_signals(
    model: nn.Module, images: Tensor, only: str | None = None, chunk: int = CALIBRATION_CHUNK
) -> dict[str, tuple[Tensor, Tensor]]:
    """Input and output of every activation layer (or of the layer named ``only``) for ``images``:
    ``{name: (x, y)}``, flattened float64 CPU vectors of the same length, evaluation mode, no
    gradient; the model's mode is restored. Layers with more than :data:`SIGNAL_SAMPLES` values
    are subsampled with a fixed stride (the same positions every call).

    The subsample is taken on the model's device, chunk by chunk as the forward passes run
    (:class:`_StridedSample`), and only it is copied to the host: the same values, in the same
    order, as copying every value and subsampling on the host, at a fraction of the copy.
    """
    layers = [(name, module) for name, module in activation_layers(model) if only in (None, name)]
    if not layers:
        raise ValueError(f"no activation layer named {only!r}")
    names = {module: name for name, module in layers}
    samples = {name: _StridedSample(images.shape[0]) for name in names.values()}
    current = {"images": 0}

    def hook(module, inputs, output):
        samples[names[module]].add(inputs[0].detach(), output.detach(), current["images"])

    handles = [module.register_forward_hook(hook) for module in names]
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            for start in range(0, images.shape[0], chunk):
                part = images[start : start + chunk]
                current["images"] = part.shape[0]
                model(part.to(device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return {name: sample.result(name) for name, sample in samples.items()}


class _StridedSample:
    """One layer's input and output, flattened and concatenated over the chunks of ``images``
    images, subsampled with stride ``max(1, total // SIGNAL_SAMPLES)`` from position 0: kept on
    the device chunk by chunk, so that only the subsample is copied to the host.

    The total is known from the first chunk: a layer's values per image (its tensor's size over
    the chunk's images) times the images. :meth:`result` checks that the chunks added up to it.
    """

    def __init__(self, images: int) -> None:
        self.images = images
        self.total: int | None = None
        self.seen = 0
        self.parts: list[tuple[Tensor, Tensor]] = []

    def add(self, x: Tensor, y: Tensor, chunk_images: int) -> None:
        x, y = x.reshape(-1), y.reshape(-1)
        if self.total is None:
            self.total = x.numel() // chunk_images * self.images
        stride = max(1, self.total // SIGNAL_SAMPLES)
        first = -self.seen % stride  # the first multiple of the stride at or after this chunk's start
        self.parts.append((x[first::stride].to("cpu", copy=True), y[first::stride].to("cpu", copy=True)))
        self.seen += x.numel()

    def result(self, name: str) -> tuple[Tensor, Tensor]:
        if self.seen != self.total:
            raise RuntimeError(
                f"activation layer {name}: {self.seen} values over the chunks, not the {self.total} "
                f"its first chunk implies (a layer whose tensor is not per image?)"
            )
        strided = self.total // SIGNAL_SAMPLES > 1
        return tuple(  # type: ignore[return-value]
            _float64_vector(torch.cat([part[i] for part in self.parts]), strided) for i in (0, 1)
        )


def _float64_vector(values: Tensor, strided: bool) -> Tensor:
    """``values`` as float64, laid out as a stride subsample of a host vector was: a view with
    stride 2 when ``strided``. Why: the CPU's sums (``mean``, ``std``) add a non-contiguous
    vector in another order than a contiguous one (last-bit differences, measured), and the
    health CSV's values must stay those of the former host-side subsample ``x[::stride]``."""
    if not strided:
        return values.double()
    spread = torch.empty(2 * values.numel(), dtype=torch.float64)[::2]
    return spread.copy_(values)


def _scale(x: Tensor) -> dict[str, float]:
    return {
        "input_mean": float(x.mean()),
        "input_std": float(x.std(unbiased=False)),
        "input_rms": float(x.square().mean().sqrt()),
    }


def nonlinear_share(x: Tensor, y: Tensor) -> float:
    """How far ``y = f(x)`` is from linear on these samples: the standard deviation of the residual
    of the least-squares line ``y ~ alpha + beta x``, over the standard deviation of ``y``.

    0 for any affine ``f``; ReLU of a zero-mean Gaussian gives 0.52 at every scale (ReLU is
    positively homogeneous); ``nan`` when ``y`` is constant.
    """
    x, y = x.double().reshape(-1), y.double().reshape(-1)
    xc, yc = x - x.mean(), y - y.mean()
    y_var = float(yc.square().mean())
    if not y_var > 0:
        return float("nan")
    x_var = float(xc.square().mean())
    beta = float((xc * yc).mean()) / x_var if x_var > 0 else 0.0
    residual = yc - beta * xc
    return float(residual.square().mean() / y_var) ** 0.5


@torch.no_grad()
def calibrate(model: nn.Module, train_images: np.ndarray | Tensor, seed: int) -> list[dict[str, Any]]:
    """Standardise the input (when the model asks for it) and set the fixed scale of every
    ``"calibrated"`` Fourier layer from its measured input (module docstring); other layers are
    only measured. Deterministic for ``seed``.

    Returns one record per activation layer, input to output: ``name``, ``kind`` (``relu``,
    ``fourier``, ``lc``), ``input_mean``, ``input_std``, ``input_rms`` (after the calibration of
    the layers before it), ``fit_interval`` (Fourier: the inputs on which it now starts as the
    ReLU fit; else ``None``) and ``calibrated`` (whether its scale was set).
    """
    standardization = getattr(model, "input_standardization", None)
    if standardization is not None and standardization.enabled:
        mean, std = channel_statistics(train_images)
        standardization.set_statistics(mean, std)
    batch = calibration_batch(train_images, seed)
    records: list[dict[str, Any]] = []
    model.calibration = records  # the trainer writes it into activations.json

    # One forward pass of the whole batch with a pre-hook on every activation layer: each layer
    # measures its input (computed by the layers before it, already calibrated) and sets its
    # scale before its own output is computed.
    def measure_and_scale(module: nn.Module, inputs: tuple[Tensor, ...]) -> None:
        x = inputs[0].detach().double().reshape(-1).cpu()
        stride = max(1, x.numel() // SIGNAL_SAMPLES)
        record: dict[str, Any] = {
            "name": names[module],
            "kind": activation_kind(module),
            **_scale(x[::stride]),
        }
        record["calibrated"] = isinstance(module, Fourier) and module.init == "calibrated"
        if record["calibrated"]:
            if not record["input_rms"] > 0:
                raise ValueError(
                    f"cannot calibrate activation {names[module]}: its input is identically zero on "
                    f"the calibration batch"
                )
            module.set_scale(module.scale_for(record["input_rms"]))
        interval = module.fit_interval if isinstance(module, Fourier) else None
        record["fit_interval"] = list(interval) if interval is not None else None
        records.append(record)

    names = {module: name for name, module in activation_layers(model)}
    handles = [module.register_forward_pre_hook(measure_and_scale) for module in names]
    was_training = model.training
    model.eval()
    try:
        model(batch.to(next(model.parameters()).device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return records


def activation_kind(module: nn.Module) -> str:
    """``fourier``, ``lc`` or ``relu`` (the names of the config and of ``activations.json``)."""
    if isinstance(module, Fourier):
        return "fourier"
    if isinstance(module, LinearCombination):
        return "lc"
    return "relu"


def parameter_vector(module: nn.Module) -> Tensor:
    """All parameters of an activation module as one float64 CPU vector (empty for ReLU)."""
    parts = [p.detach().double().reshape(-1).cpu() for p in module.parameters()]
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64)


@torch.no_grad()
def layer_health(model: nn.Module, batch: Tensor, start: Sequence[Tensor]) -> list[dict[str, Any]]:
    """Per activation layer, on the calibration ``batch``: the input's standard deviation and root
    mean square, the share of inputs outside the Fourier fit interval (where the periodic series
    turns back down; ``None`` for other kinds), the output's :func:`nonlinear_share` and, as the
    yardstick, that of ReLU on the same inputs (``relu_nonlinear_share``), and the
    distance of the layer's parameters from ``start`` (their values before training, one vector
    per layer as :func:`parameter_vector` gives): absolute (L2) and relative to the start's norm.
    """
    signals = layer_signals(model, batch)
    rows = []
    for (name, module), initial in zip(activation_layers(model), start, strict=True):
        x, y = signals[name]
        interval = module.fit_interval if isinstance(module, Fourier) else None
        outside = None if interval is None else float(((x < interval[0]) | (x > interval[1])).double().mean())
        current = parameter_vector(module)
        distance = float((current - initial).norm()) if current.numel() else None
        initial_norm = float(initial.norm()) if initial.numel() else 0.0
        rows.append(
            {
                "layer": name,
                "kind": activation_kind(module),
                "input_std": float(x.std(unbiased=False)),
                "input_rms": float(x.square().mean().sqrt()),
                "outside_fit_share": outside,
                "nonlinear_share": nonlinear_share(x, y),
                "relu_nonlinear_share": nonlinear_share(x, torch.relu(x)),
                "param_distance": distance,
                "param_relative_distance": distance / initial_norm
                if distance is not None and initial_norm > 0
                else None,
            }
        )
    return rows
