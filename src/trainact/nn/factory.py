"""The factory of activation layers used by the models: :func:`make_activation` builds a layer
from the config's ``model`` slice."""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from trainact.names import ACTIVATIONS
from trainact.nn.fourier import Fourier
from trainact.nn.gain_relu import GainReLU
from trainact.nn.linear_combination import LinearCombination
from trainact.nn.trainable import check_choice


def _keyword_options(cls: type) -> tuple[str, ...]:
    return tuple(
        name
        for name, p in inspect.signature(cls.__init__).parameters.items()
        if name != "self" and name != "num_channels" and p.kind is not p.VAR_KEYWORD
    )


def _lc_shape_options(model_cfg: dict, num_channels: int) -> dict[str, Any]:
    """The LC options that decide its weights' shape (``candidates``, ``per_channel``), for a layer
    of ``num_channels``: what :class:`GainReLU` matches (LC's own defaults where unset)."""
    options = model_cfg.get("lc") or {}
    shape = {key: options[key] for key in ("candidates", "per_channel") if key in options}
    if shape.get("per_channel"):
        shape["num_channels"] = num_channels
    return shape


def make_activation(name: str, num_channels: int, model_cfg: dict) -> nn.Module:
    """The activation module ``name`` (``relu``, ``fourier`` or ``lc``) for a layer of ``num_channels``.

    ``model_cfg`` keys read here (other keys belong to the model and are ignored):
    ``"fourier"``: dict of :class:`Fourier` keyword arguments; ``"lc"``: dict of
    :class:`LinearCombination` keyword arguments; ``"impl"``: default implementation for both
    (a per-activation ``"impl"`` in those dicts wins); ``"relu_gain"``: ``relu`` becomes a
    :class:`GainReLU` with as many gains as the ``"lc"`` settings give LC weights (one per
    candidate, per channel with LC's ``per_channel``). ``num_channels`` is used with ``per_channel``.
    Raises ``ValueError`` naming an unknown activation, option or value.
    """
    check_choice("activation", name, ACTIVATIONS)
    if name == "relu":
        if not model_cfg.get("relu_gain", False):
            return nn.ReLU()
        # the start plays no part in the shape; "uniform" is valid for every candidate set
        lc = LinearCombination(**_lc_shape_options(model_cfg, num_channels), init="uniform")
        return GainReLU(lc.weights.shape[-1], per_channel=lc.per_channel, num_channels=lc.num_channels)
    cls, section = (Fourier, "fourier") if name == "fourier" else (LinearCombination, "lc")
    options = model_cfg.get(section) or {}
    if not isinstance(options, dict):
        raise ValueError(f"model config {section!r} must be a dict of options, got {options!r}")
    allowed = _keyword_options(cls)
    for key in options:
        check_choice(f"{section} option", key, allowed)
    kwargs = {"impl": model_cfg.get("impl", "auto"), **options}
    if kwargs.get("per_channel"):
        kwargs["num_channels"] = num_channels
    return cls(**kwargs)
