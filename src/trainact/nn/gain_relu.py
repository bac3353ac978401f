"""ReLU times trainable gains: the control with the linear combination's parameter count."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from trainact.nn.reference import channel_shape
from trainact.nn.trainable import TrainableActivation, check_channels


class GainReLU(TrainableActivation):
    r"""ReLU times a trainable gain: the control for the trainable activations' extra parameters.

    .. math::
        \mathrm{act}(x) = \Big(\sum_{i=1}^{k} g_i\Big)\, \mathrm{relu}(x)

    with trainable gains :math:`g_i`, as many per layer (or per channel) as a
    :class:`LinearCombination` with ``k`` candidates has weights, so that a ReLU network with these
    layers has exactly the LC network's parameter count. It isolates one explanation of a
    difference between the ReLU CNN and a trainable-activation CNN: extra trainable parameters
    that can rescale a layer's output. The ``k`` gains act only through their sum (each gets the
    same gradient, ``sum_x grad_y relu(x)``); under RMSProp each moves by about the learning rate
    per step, so the sum moves ``k`` times as fast, as LC's ``k`` weights together move its mixture.

    Start: :math:`g_i = 1/k`, whose sum is exactly 1 in float32 for every ``k <= 4`` (the number of
    LC candidates), so the layer starts bit for bit as ``relu``.

    Args:
        num_gains: ``k``, the number of LC candidates the layer matches.
        per_channel: one gain vector per channel (dimension 1 of the input), as LC's option.
        num_channels: the number of channels ``C``; required with ``per_channel=True``.

    Shape:
        - Input: :math:`(N, *)`; with ``per_channel=True``: :math:`(N, C, *)`.
        - Output: same shape and dtype as the input (the product is formed in at least float32).

    Attributes:
        gains: shape ``(k,)``, per channel ``(C, k)``.
    """

    def __init__(self, num_gains: int, *, per_channel: bool = False, num_channels: int | None = None):
        super().__init__()
        if not isinstance(num_gains, int) or num_gains < 1:
            raise ValueError(f"GainReLU num_gains must be an integer >= 1, got {num_gains!r}")
        check_channels(per_channel, num_channels)
        self.num_gains, self.per_channel = num_gains, per_channel
        self.num_channels = num_channels if per_channel else None
        initial = torch.full((num_gains,), 1.0 / num_gains)
        if per_channel:
            initial = initial.expand(num_channels, -1).clone()
        self.gains = nn.Parameter(initial)

    def _reference(self, x: Tensor) -> Tensor:
        gain = self.gains.sum(-1)
        if self.per_channel:
            gain = gain.reshape(channel_shape(x))
        dtype = torch.promote_types(x.dtype, gain.dtype)
        return (torch.relu(x).to(dtype) * gain.to(dtype)).to(x.dtype)

    def forward(self, x: Tensor) -> Tensor:
        # Plain autograd (two cheap pointwise ops); no kernel of its own, no impl to choose.
        self._check_input(x)
        return self._reference(x)

    def extra_repr(self) -> str:
        channels = f", num_channels={self.num_channels}" if self.per_channel else ""
        return f"num_gains={self.num_gains}, per_channel={self.per_channel}{channels}"
