"""The paper's CNN family: three sizes x three activations.

The paper's Figure 1 (the network structure) is missing from its text, so this module is
our reading of it, stated once here and in ``config.yaml`` / the report's "Deviations":

    input 3 x 32 x 32, pixels scaled to [0, 1]
        (option preprocessing = "standardize": minus the training set's per-channel mean, over
        its standard deviation; default "none", the paper's "not pre-processed" data)
    3 stages, each: Conv2d(3x3, padding 1) -> activation -> MaxPool2d(2)
        (ConvStage; a trainable activation and the max-pool run as one fused kernel)
        filters  small 16/32/32, middle 32/64/64, large 48/96/96   (the paper's numbers)
        spatial  32 -> 16 -> 8 -> 4
    head: Flatten -> Linear(C3 * 4 * 4, hidden) -> activation -> Linear(hidden, 10)
        hidden = 128 for every size (the paper says only the filter numbers differ)

Every activation is its own module instance (a trainable activation learns one set of
parameters per layer, or per channel as an option). Initialisation (paper silent; option
``init``, :data:`WEIGHT_INITS`): ``"pytorch"`` (default), PyTorch's own (Kaiming-uniform with
a = sqrt(5) for conv and linear weights, biases uniform in +-1/sqrt(fan_in)), or
``"glorot_uniform"``, Keras' default (weights uniform in +-sqrt(6 / (fan_in + fan_out)), biases
zero), which the paper's Keras notation (rho) suggests it used. The activations start as
configured: by default a Fourier layer as the ReLU fit on ``[-4, 4]`` (``init = "relu_fit"``,
independent of the data) and an LC layer one-hot on ReLU. The data-dependent part of the start
is :func:`trainact.nn.calibration.calibrate`, called right after :func:`build_model`: the
standardisation statistics (``preprocessing = "standardize"``) and the fixed input scale of
Fourier layers with ``init = "calibrated"`` (not the default).

Option ``relu_gain`` (a control of the sensitivity study): the ReLU CNN's activation layers become
:class:`trainact.nn.gain_relu.GainReLU`, ReLU times trainable gains, as many as the LC network's
weights, so that the two differ in the function class, not in the parameter count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from trainact.data.cifar import IMAGE_SHAPE, NUM_CLASSES
from trainact.names import ACTIVATIONS, PAPER_FILTERS
from trainact.nn.factory import make_activation
from trainact.nn.trainable import TrainableActivation

#: Input preprocessing: "none" (pixels in [0, 1], the paper's setting) or "standardize".
PREPROCESSING = ("none", "standardize")
DEFAULT_HIDDEN = 128
#: Initialisation of the conv and dense layers: PyTorch's default or Keras' (Glorot-uniform, zero bias).
WEIGHT_INITS = ("pytorch", "glorot_uniform")


class InputStandardization(nn.Module):
    """``(x - mean_c) / std_c`` per channel, with statistics set from the training images
    (:func:`trainact.nn.calibration.calibrate`); the identity when not ``enabled``.

    The statistics are buffers (``model.pt`` carries them) that exist only when enabled, so a
    network without preprocessing has exactly the state dict it always had.

    Shape: ``(N, C, H, W)`` -> same.
    """

    def __init__(self, channels: int, enabled: bool) -> None:
        super().__init__()
        self.channels, self.enabled = int(channels), bool(enabled)
        if self.enabled:
            self.register_buffer("mean", torch.zeros(self.channels))
            self.register_buffer("std", torch.ones(self.channels))

    @torch.no_grad()
    def set_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Set the per-channel mean and standard deviation (shape ``(C,)``, std > 0)."""
        if not self.enabled:
            raise RuntimeError("input standardisation is disabled (preprocessing = 'none')")
        mean, std = torch.as_tensor(mean).reshape(-1), torch.as_tensor(std).reshape(-1)
        if mean.numel() != self.channels or std.numel() != self.channels:
            raise ValueError(f"need {self.channels} means and stds, got {mean.numel()} and {std.numel()}")
        if not bool((std > 0).all()):
            raise ValueError(f"standard deviations must be > 0, got {std.tolist()} (constant images?)")
        self.mean.copy_(mean.to(self.mean))
        self.std.copy_(std.to(self.std))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return x
        shape = (1, self.channels, 1, 1)
        return (x - self.mean.view(shape)) / self.std.view(shape)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, enabled={self.enabled}"


class ConvStage(nn.Sequential):
    """One conv stage, ``Conv2d -> activation -> MaxPool2d(2)``: an :class:`nn.Sequential` of the
    three (so its state-dict keys are ``<stage>.0.weight``, ``<stage>.1.A``, ... as always), whose
    forward runs a trainable activation and the max-pool as one fused kernel
    (:meth:`TrainableActivation.max_pool`, :mod:`trainact.nn.pool_kernels`) when that gives what
    the three modules in turn would, up to float rounding: the pool is a plain 2x2 / stride 2
    ``MaxPool2d`` and no hook (of the activation, of the pool, or global) would miss the
    activation's output. ReLU, GainReLU and other activations run the three modules in turn.

    Shape: ``(N, C_in, H, W)`` -> ``(N, C_out, H // 2, W // 2)``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv, activation, pool = self
        x = conv(x)
        if _fusable(activation, pool):
            return activation.max_pool(x)
        return pool(activation(x))


def _fusable(activation: nn.Module, pool: nn.Module) -> bool:
    """Whether ``pool(activation(x))`` may run as ``activation.max_pool(x)``."""
    return (
        isinstance(activation, TrainableActivation)
        and activation.fuses_max_pool
        and type(pool) is nn.MaxPool2d
        and _pair(pool.kernel_size) == (2, 2)
        and _pair(pool.stride) == (2, 2)
        and _pair(pool.padding) == (0, 0)
        and _pair(pool.dilation) == (1, 1)
        and not pool.ceil_mode
        and not pool.return_indices
        and not _has_hooks(activation)
        and not _has_hooks(pool)
    )


def _pair(value: Any) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _has_hooks(module: nn.Module) -> bool:
    """Whether a forward or backward hook, of ``module`` or global, would run with ``module``."""
    from torch.nn.modules import module as module_globals

    hook_dicts = (
        module._forward_hooks,
        module._forward_pre_hooks,
        module._backward_hooks,
        module._backward_pre_hooks,
        module_globals._global_forward_hooks,
        module_globals._global_forward_pre_hooks,
        module_globals._global_backward_hooks,
        module_globals._global_backward_pre_hooks,
    )
    return any(len(hooks) > 0 for hooks in hook_dicts)


class PaperCNN(nn.Module):
    """Three conv stages and a two-layer dense head, with a pluggable activation.

    Args:
        filters: output channels of the three 3x3 convolutions.
        activation: ``"relu"``, ``"fourier"`` or ``"lc"``.
        hidden: width of the hidden dense layer.
        model_cfg: activation settings passed to :func:`make_activation`
            (keys ``fourier``, ``lc``, ``impl``, ``relu_gain``).
        preprocessing: ``"none"`` or ``"standardize"`` (:class:`InputStandardization`).

    Shape:
        - Input: ``(N, 3, 32, 32)`` float.
        - Output: ``(N, 10)`` logits.
    """

    def __init__(
        self,
        filters: Sequence[int],
        activation: str,
        *,
        hidden: int = DEFAULT_HIDDEN,
        num_classes: int = NUM_CLASSES,
        model_cfg: Mapping[str, Any] | None = None,
        preprocessing: str = "none",
    ) -> None:
        super().__init__()
        if preprocessing not in PREPROCESSING:
            raise ValueError(f"unknown preprocessing {preprocessing!r}; choose one of {PREPROCESSING}")
        if len(filters) != 3 or any(int(f) < 1 for f in filters):
            raise ValueError(f"filters must be three positive integers, got {list(filters)!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {ACTIVATIONS}")
        model_cfg = dict(model_cfg or {})
        self.activation_name = activation
        self.filters = tuple(int(f) for f in filters)
        self.hidden = int(hidden)
        self.preprocessing = preprocessing
        self.input_standardization = InputStandardization(IMAGE_SHAPE[0], preprocessing == "standardize")

        stages = []
        in_channels = IMAGE_SHAPE[0]
        for out_channels in self.filters:
            stages.append(
                ConvStage(
                    nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
                    make_activation(activation, out_channels, model_cfg),
                    nn.MaxPool2d(2),
                )
            )
            in_channels = out_channels
        self.stages = nn.ModuleList(stages)
        spatial = IMAGE_SHAPE[1] // 2 ** len(stages)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_channels * spatial * spatial, self.hidden),
            make_activation(activation, self.hidden, model_cfg),
            nn.Linear(self.hidden, num_classes),
        )

    def features(self, x: torch.Tensor, upto: int | None = None) -> torch.Tensor:
        """Output of the first ``upto`` conv stages (all of them when ``None``), after the input
        standardisation (``upto = 0``: the standardised input)."""
        x = self.input_standardization(x)
        for stage in self.stages[:upto]:
            x = stage(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def activation_modules(self) -> list[tuple[str, nn.Module]]:
        """``(qualified name, module)`` of every activation layer, input to output."""
        return [(name, module) for name, module in self.named_modules() if _is_activation(module)]

    def extra_repr(self) -> str:
        return (
            f"filters={self.filters}, hidden={self.hidden}, activation={self.activation_name!r}, "
            f"preprocessing={self.preprocessing!r}"
        )


def _is_activation(module: nn.Module) -> bool:
    return isinstance(module, (TrainableActivation, nn.ReLU))


def filters_for(size: str, model_cfg: Mapping[str, Any] | None = None) -> tuple[int, int, int]:
    """Filter numbers of ``size``, from ``model_cfg["filters"]`` or the paper's table."""
    table = dict(PAPER_FILTERS)
    table.update({k: tuple(v) for k, v in dict((model_cfg or {}).get("filters", {})).items()})
    if size not in table:
        raise ValueError(f"unknown model size {size!r}; choose one of {sorted(table)}")
    return table[size]


def _checked_init(init: str) -> str:
    if init not in WEIGHT_INITS:
        raise ValueError(f"unknown init {init!r}; choose one of {WEIGHT_INITS}")
    return init


@torch.no_grad()
def initialise_weights(model: nn.Module, init: str) -> None:
    """Re-initialise every conv and dense layer of ``model`` as ``init`` says (:data:`WEIGHT_INITS`).

    ``"pytorch"`` leaves the model untouched (the layers' constructors already drew PyTorch's
    default), so it stays bit for bit what it was before this option existed. ``"glorot_uniform"``
    draws each weight from ``U(-b, b)``, ``b = sqrt(6 / (fan_in + fan_out))``
    (:func:`torch.nn.init.xavier_uniform_`; a conv's fans count its 3x3 receptive field) and sets
    each bias to 0, as Keras' ``Conv2D`` and ``Dense`` do by default. Activation parameters are
    not touched.
    """
    if _checked_init(init) == "pytorch":
        return
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


def build_model(size: str, activation: str, model_cfg: Mapping[str, Any] | None = None) -> PaperCNN:
    """The CNN of the given size and activation, as configured by ``model_cfg``.

    ``model_cfg`` is the config's ``model`` slice: ``filters`` (size -> 3 ints),
    ``hidden`` (int), ``fourier`` and ``lc`` (activation settings), ``impl``, ``preprocessing``,
    ``init`` (:func:`initialise_weights`, after construction), ``relu_gain`` (ReLU layers as
    :class:`trainact.nn.gain_relu.GainReLU`).
    """
    model_cfg = dict(model_cfg or {})
    init = _checked_init(str(model_cfg.get("init", WEIGHT_INITS[0])))  # before anything is drawn
    model = PaperCNN(
        filters_for(size, model_cfg),
        activation,
        hidden=int(model_cfg.get("hidden", DEFAULT_HIDDEN)),
        model_cfg=model_cfg,
        preprocessing=str(model_cfg.get("preprocessing", "none")),
    )
    initialise_weights(model, init)
    model.size_name = size
    return model


def parameter_count(model: nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def describe(size: str, model_cfg: Mapping[str, Any] | None = None, activation: str = "relu") -> list[dict]:
    """Layer table of one network, generated from the code (the paper's missing Figure 1).

    Returns one dict per leaf layer: ``layer`` (qualified name), ``type`` (its repr without
    children), ``output_shape`` (per image, e.g. ``(16, 32, 32)``) and ``params`` (trainable).
    """
    model = build_model(size, activation, {**dict(model_cfg or {}), "impl": "reference"})
    rows: list[dict] = []
    hooks = []
    for name, module in model.named_modules():
        if name and not list(module.children()):

            def record(mod, _inputs, output, name=name):
                rows.append(
                    {
                        "layer": name,
                        "type": f"{mod.__class__.__name__}({mod.extra_repr()})",
                        "output_shape": tuple(output.shape[1:]),
                        "params": sum(p.numel() for p in mod.parameters(recurse=False)),
                    }
                )

            hooks.append(module.register_forward_hook(record))
    with torch.no_grad():
        model(torch.zeros(1, *IMAGE_SHAPE))
    for hook in hooks:
        hook.remove()
    return rows
