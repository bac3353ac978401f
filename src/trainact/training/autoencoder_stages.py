"""The autoencoder's stages and decoders (the paper's Section 5.1; the pretraining itself:
:mod:`trainact.training.autoencoder`).

Stages ``k = 0, 1, 2`` are the conv stages ``model.stages[k]``; stage ``k = 3`` is the dense hidden
layer (``model.head[1]`` Linear -> ``model.head[2]`` activation). Conv-stage decoders (paper silent;
the ``decoder`` setting, :data:`DECODERS`) map ``(N, C_k, H/2, W/2)`` back to ``(N, C_in, H, W)``; the
dense stage's decoder is one ``Linear(hidden, C_3 * 4 * 4)``.
"""

from __future__ import annotations

import torch
from torch import nn

from trainact.nn.models import PaperCNN

DECODERS = ("conv_transpose", "upsample_conv")


class StageDecoder(nn.Module):
    """Maps a conv stage's output back to the stage's input (one stage of the autoencoder).

    ``conv_transpose``: :math:`\\hat h = g(\\mathrm{ConvTranspose2d}_{2\\times2,\\,stride 2}(z))`;
    ``upsample_conv``: :math:`\\hat h = g(\\mathrm{Conv2d}_{3\\times3}(\\mathrm{Upsample}_{\\times2}(z)))`,
    with :math:`g` the sigmoid (``sigmoid_output=True``, for pixel targets in [0, 1]) or the identity.

    Args:
        kind: ``"conv_transpose"`` or ``"upsample_conv"``.
        in_channels: channels of the stage's output ``z``.
        out_channels: channels of the stage's input ``h`` (the reconstruction target).
        sigmoid_output: squash the reconstruction into (0, 1).

    Shape:
        - Input: ``(N, in_channels, H, W)``.
        - Output: ``(N, out_channels, 2H, 2W)``.
    """

    def __init__(self, kind: str, in_channels: int, out_channels: int, *, sigmoid_output: bool) -> None:
        super().__init__()
        if kind == "conv_transpose":
            self.layers = nn.Sequential(
                nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
            )
        elif kind == "upsample_conv":
            self.layers = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
            )
        else:
            raise ValueError(f"unknown decoder {kind!r}; choose one of {list(DECODERS)}")
        self.sigmoid_output = sigmoid_output

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        reconstruction = self.layers(z)
        return torch.sigmoid(reconstruction) if self.sigmoid_output else reconstruction

    def extra_repr(self) -> str:
        return f"sigmoid_output={self.sigmoid_output}"


def _dense_layer(model: PaperCNN) -> nn.Linear:
    """The hidden dense layer ``model.head[1]`` (checked: the head is Flatten, Linear, act, Linear)."""
    head = model.head
    if not (
        len(head) == 4
        and isinstance(head[0], nn.Flatten)
        and isinstance(head[1], nn.Linear)
        and isinstance(head[3], nn.Linear)
    ):
        raise ValueError(f"expected a head Flatten -> Linear -> activation -> Linear, got {head}")
    return head[1]


def stage_names(model: PaperCNN) -> list[str]:
    """Module names of the pretraining stages, in order: the conv stages, then the dense layer."""
    _dense_layer(model)
    return [f"stages.{k}" for k in range(len(model.stages))] + ["head.1"]


def stage_encoder(model: PaperCNN, index: int) -> nn.Module:
    """Pretraining stage ``index`` of ``model``: a conv stage, or (the last) Linear -> activation."""
    if index < len(model.stages):
        return model.stages[index]
    if index == len(model.stages):
        _dense_layer(model)
        return model.head[1:3]  # shares the classifier's modules
    raise IndexError(f"stage {index}: the model has {len(model.stages) + 1} pretraining stages")


def stage_input(model: PaperCNN, index: int, images: torch.Tensor) -> torch.Tensor:
    """The input of pretraining stage ``index``: ``images`` through the stages before it."""
    h = model.features(images, upto=min(index, len(model.stages)))
    return model.head[0](h) if index >= len(model.stages) else h


def build_decoders(model: PaperCNN, kind: str) -> nn.ModuleList:
    """One decoder per pretraining stage of ``model``: a :class:`StageDecoder` per conv stage (stage
    0's with a sigmoid output when its targets are pixels in [0, 1], i.e. without input
    standardisation), then ``Linear(hidden, C_3 * 4 * 4)`` for the dense stage."""
    channels = [model.stages[0][0].in_channels] + list(model.filters)
    dense = _dense_layer(model)
    pixels = getattr(model, "preprocessing", "none") == "none"
    conv = [
        StageDecoder(kind, channels[k + 1], channels[k], sigmoid_output=(k == 0 and pixels))
        for k in range(len(model.stages))
    ]
    return nn.ModuleList([*conv, nn.Linear(dense.out_features, dense.in_features)])
