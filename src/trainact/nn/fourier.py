"""The trainable Fourier series activation (paper eq. 2) and its starts (:data:`FOURIER_INITS`).

The class docstring of :class:`Fourier` gives the formula, the gradients, the starts and the
shapes; the constants below say why the starts are as they are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from trainact.nn.kernels import fourier_fast
from trainact.nn.pool_kernels import fourier_max_pool_fast
from trainact.nn.reference import fourier_at_scale, fourier_reference
from trainact.nn.trainable import (
    IMPLS,
    TrainableActivation,
    check_channels,
    check_choice,
)

FOURIER_INITS = ("calibrated", "relu_fit", "random")

# Fourier "relu_fit" initialisation: the series has period 2*pi/omega; fitting ReLU on an interval
# of width W with period 1.5*W leaves a third of the period for the series to come back from the
# value at the right end to the value at the left end. With period W (omega = pi/L on [-L, L]) the
# periodic extension of ReLU jumps by L at the interval ends, and the rank-5 fit rings (Gibbs) with
# errors up to 0.5*L inside the interval; with period 2*W the least-squares system is ill
# conditioned (coefficients about 8*L with cancelling signs). Period 1.5*W gives a maximum error of
# 0.023*W/2 (0.093 on [-4, 4]) with coefficients below 2 (measured for rank 5).
RELU_FIT_PERIOD_PER_WIDTH = 1.5
RELU_FIT_GRID_POINTS = 4001
# Fourier "calibrated" initialisation: the same ReLU fit on init_interval ([-4, 4]), applied at the
# layer's own scale: act(x) = s * g(x / s) with g the fitted series and s a fixed (not trained)
# scale chosen so that init_interval maps onto [-k r, k r], r the root mean square of the layer's
# input on a calibration batch (trainact.nn.calibration measures it), k = CALIBRATION_SIGMAS. ReLU is
# positively homogeneous (s * relu(x / s) = relu(x)), so the layer starts as the ReLU fit on the
# range its inputs really take. With k = 3 about 0.3 % of Gaussian pre-activations fall outside the
# interval at the start (where the periodic series turns back down), and the fit's rounding of
# ReLU's kink (error 0.0233 * k * r at 0) stays a small fraction of the signal. Why a fixed scale
# instead of refitting the coefficients on [-k r, k r]: the refitted A, a_n, b_n are k r / 4 times
# smaller (0.01-0.3 instead of 0.1-2) while RMSProp moves every parameter by about the learning rate
# per step whatever its size, so their shape would change 10-30x faster than the layer's weights
# (measured: the non-linear share of a refitted layer went from 0.56 to 0.99 in 8 steps). With the
# scale outside, the trained parameters keep the magnitudes of the [-4, 4] fit.
CALIBRATION_SIGMAS = 3.0
# Fourier "random" initialisation: A = 0, a_n, b_n ~ Normal(0, RANDOM_INIT_STD^2), omega = 1.
RANDOM_INIT_STD = 0.1
RANDOM_INIT_OMEGA = 1.0


class Fourier(TrainableActivation):
    r"""Trainable truncated Fourier series activation (paper eq. 2).

    .. math::
        \mathrm{act}(x) = A + \sum_{n=1}^{\mathrm{rank}} a_n \cos(n \omega x) + b_n \sin(n \omega x)

    with trainable :math:`A, \omega, a_n, b_n` (the paper uses rank 5, one set per layer).

    Gradients: the paper's eqs. (4)-(5) state :math:`\partial act/\partial a_n = -n\omega\sin(n\omega x)`
    and :math:`\partial act/\partial b_n = n\omega\cos(n\omega x)`; those are the derivatives with respect
    to :math:`x` of the terms :math:`\cos(n\omega x)` and :math:`\sin(n\omega x)`, not the parameter
    gradients. The correct ones, used here, are :math:`\partial act/\partial a_n = \cos(n\omega x)`,
    :math:`\partial act/\partial b_n = \sin(n\omega x)`, :math:`\partial act/\partial A = 1`,
    :math:`\partial act/\partial\omega = x \sum_n n (b_n\cos(n\omega x) - a_n\sin(n\omega x))` (eq. (6)
    pairs a_n with cos and b_n with sin instead) and
    :math:`\partial act/\partial x = \omega\sum_n n(b_n\cos(n\omega x) - a_n\sin(n\omega x))`.
    The fast implementation gets all harmonics from one ``sin`` and one ``cos`` by angle addition.

    The series is periodic with period :math:`2\pi/\omega`: far outside the interval it was fitted
    on, it repeats (it does not keep growing like ReLU).

    Initialisation (unstated in the paper):

    ``"calibrated"``
        the ``"relu_fit"`` start below, applied at the layer's own scale:
        :math:`\mathrm{act}(x) = s\,g(x/s)` with :math:`g` the series and :math:`s` a fixed buffer
        (``scale``, not trained) that maps ``init_interval`` onto ``[-k r, k r]``, ``r`` the root mean
        square of this layer's input and ``k = calibration_sigmas`` (default 3).
        :func:`trainact.nn.calibration.calibrate` measures ``r`` on a seeded batch of training images,
        layer by layer from the input, and calls :meth:`set_scale`. At PyTorch's default weights and
        ``[0, 1]`` pixels ``r`` is about 0.3 in the first layer and 0.04-0.13 in later ones, where the
        unscaled fit on ``[-4, 4]`` is almost a straight line. ``s`` equals 1 until calibrated. The
        function class is the paper's (eq. 2 with coefficients ``s A, s a_n, s b_n`` and frequency
        ``omega / s``); only the optimiser sees other magnitudes (see the constants of
        :mod:`trainact.nn.fourier`). Not the default: RMSProp grows the pre-activations several-fold
        in the first epoch, they leave the narrow interval, and the periodic series scrambles them
        (measured: the middle Fourier-CNN at chance accuracy after one epoch, for k = 3, 6, 8 and, on
        another seed, 12).
    ``"relu_fit"`` (default)
        least-squares fit of the series to ReLU on ``init_interval`` (default ``[-4, 4]``,
        4001 grid points), with :math:`\omega = 2\pi / (1.5 \cdot \text{width})` (``pi/6`` on
        ``[-4, 4]``) unless ``omega`` is given. The network thus starts as the ReLU network it is
        compared with. The period of 1.5 interval widths avoids both the Gibbs ringing of a period of
        one width and the ill-conditioning of two; the fit is within 0.093 of ReLU on ``[-4, 4]``
        (max error ``0.0233 * width / 2`` for rank 5). Pre-activations of the paper CNNs with
        ``[0, 1]`` pixels and PyTorch's default initialisation lie within ``[-1.7, 1.7]`` in the
        first layer and ``[-0.35, 0.35]`` in the later ones (measured, all sizes); ``[-4, 4]``
        leaves room for their growth during training, at the price of a smoother kink than a
        narrower interval would give (error at 0: 0.093 on ``[-4, 4]``, 0.047 on ``[-2, 2]``).
    ``"random"``
        :math:`A = 0`, :math:`a_n, b_n \sim \mathcal N(0, 0.1^2)`, :math:`\omega = 1` (or ``omega``).

    Args:
        rank: number of harmonics.
        per_channel: one parameter set per channel (dimension 1 of the input) instead of one per layer.
        num_channels: the number of channels ``C``; required with ``per_channel=True``.
        init: ``"calibrated"``, ``"relu_fit"`` or ``"random"``.
        init_interval: ``(low, high)`` interval of the ReLU fit (before the ``"calibrated"`` scale).
        calibration_sigmas: ``k`` of the calibrated interval ``[-k r, k r]``.
        omega: initial frequency; ``None`` picks the one described above.
        impl: ``"auto"``, ``"compiled"``, ``"eager"`` or ``"reference"`` (see :mod:`trainact.nn.trainable`).

    Shape:
        - Input: :math:`(N, *)`; with ``per_channel=True``: :math:`(N, C, *)`.
        - Output: same shape and dtype as the input.

    Attributes:
        A, omega: shape ``(1,)``, per channel ``(C,)``.
        a, b: shape ``(rank,)``, per channel ``(C, rank)``.
        scale: buffer of shape ``(1,)``, the fixed input/output scale ``s`` (1 unless calibrated).
        fit_interval: ``init_interval`` times ``scale``, the inputs on which the layer started as the
            ReLU fit (``None`` for ``"random"``).
    """

    def __init__(
        self,
        rank: int = 5,
        *,
        per_channel: bool = False,
        num_channels: int | None = None,
        init: str = "relu_fit",
        init_interval: Sequence[float] = (-4.0, 4.0),
        calibration_sigmas: float = CALIBRATION_SIGMAS,
        omega: float | None = None,
        impl: str = "auto",
    ):
        super().__init__()
        if not isinstance(rank, int) or rank < 1:
            raise ValueError(f"Fourier rank must be an integer >= 1, got {rank!r}")
        check_channels(per_channel, num_channels)
        check_choice("Fourier init", init, FOURIER_INITS)
        check_choice("activation impl", impl, IMPLS)
        low, high = (float(v) for v in init_interval)
        if not low < high:
            raise ValueError(
                f"Fourier init_interval must be (low, high) with low < high, got {init_interval!r}"
            )
        if omega is not None and not float(omega) > 0:
            raise ValueError(f"Fourier omega must be > 0, got {omega!r}")
        if not (math.isfinite(float(calibration_sigmas)) and float(calibration_sigmas) > 0):
            raise ValueError(f"Fourier calibration_sigmas must be > 0, got {calibration_sigmas!r}")
        self.rank, self.per_channel, self.num_channels = (
            rank,
            per_channel,
            num_channels if per_channel else None,
        )
        self.init, self.init_interval, self.impl = init, (low, high), impl
        self.calibration_sigmas = float(calibration_sigmas)

        if init == "random":
            w = omega if omega is not None else RANDOM_INIT_OMEGA
            A0 = 0.0
            a0 = torch.randn(rank) * RANDOM_INIT_STD
            b0 = torch.randn(rank) * RANDOM_INIT_STD
        else:
            w = omega if omega is not None else 2 * math.pi / (RELU_FIT_PERIOD_PER_WIDTH * (high - low))
            A0, a0, b0 = relu_fit(rank, w, (low, high))
            a0, b0 = a0.float(), b0.float()
        groups = num_channels if per_channel else None
        self.A = nn.Parameter(self._grouped(torch.tensor([A0]), groups))
        self.omega = nn.Parameter(self._grouped(torch.tensor([float(w)]), groups))
        self.a = nn.Parameter(self._grouped(a0, groups))
        self.b = nn.Parameter(self._grouped(b0, groups))
        self.register_buffer("scale", torch.ones(1))

    @property
    def fit_interval(self) -> tuple[float, float] | None:
        """The inputs on which the layer started as the ReLU fit: ``init_interval * scale``."""
        if self.init == "random":
            return None
        s = float(self.scale)
        return (self.init_interval[0] * s, self.init_interval[1] * s)

    @torch.no_grad()
    def set_scale(self, scale: float) -> None:
        """Set the fixed scale ``s`` of ``s * g(x / s)`` (``"calibrated"``; see the class doc)."""
        scale = float(scale)
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"Fourier scale must be finite and > 0, got {scale!r}")
        self.scale.fill_(scale)

    def scale_for(self, input_rms: float) -> float:
        """The ``scale`` that maps ``init_interval`` onto ``[-k r, k r]`` for ``r = input_rms``."""
        return self.calibration_sigmas * float(input_rms) / max(abs(v) for v in self.init_interval)

    @staticmethod
    def _grouped(value: Tensor, groups: int | None) -> Tensor:
        """Per layer: ``value`` itself; per channel: ``(1,)`` -> ``(C,)``, ``(rank,)`` -> ``(C, rank)``."""
        value = value.float()
        if groups is None:
            return value.clone()
        if value.shape == (1,):
            return value.expand(groups).clone()
        return value.expand(groups, -1).clone()

    def _scaled_parameters(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return fourier_at_scale(self.A, self.omega, self.a, self.b, self.scale)

    def _reference(self, x: Tensor) -> Tensor:
        return fourier_reference(x, *self._scaled_parameters())

    def _fast(self, x: Tensor) -> Tensor:
        return fourier_fast(x, *self._scaled_parameters(), self.impl)

    fuses_max_pool = True

    def _fast_max_pool(self, x: Tensor) -> Tensor:
        return fourier_max_pool_fast(x, *self._scaled_parameters(), self.impl)

    def extra_repr(self) -> str:
        channels = f", num_channels={self.num_channels}" if self.per_channel else ""
        calibration = f", calibration_sigmas={self.calibration_sigmas:g}" if self.init == "calibrated" else ""
        return (
            f"rank={self.rank}, per_channel={self.per_channel}{channels}, init={self.init!r}"
            f"{calibration}, impl={self.impl!r}"
        )


def relu_fit(rank: int, omega: float, interval: Sequence[float]) -> tuple[float, Tensor, Tensor]:
    """Least-squares ``A, a, b`` (float64) of the rank-``rank`` series with frequency ``omega``
    fitted to ReLU on ``RELU_FIT_GRID_POINTS`` equally spaced points of ``interval``."""
    low, high = interval
    x = torch.linspace(low, high, RELU_FIT_GRID_POINTS, dtype=torch.float64)
    n = torch.arange(1, rank + 1, dtype=torch.float64)
    phase = omega * x[:, None] * n
    basis = torch.cat([torch.ones_like(x)[:, None], torch.cos(phase), torch.sin(phase)], dim=1)
    solution = torch.linalg.lstsq(basis, torch.relu(x)[:, None]).solution[:, 0]
    return float(solution[0]), solution[1 : rank + 1], solution[rank + 1 :]
