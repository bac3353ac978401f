"""Trainable activations: fast kernels against the reference formulas, guards, init, factory."""

from __future__ import annotations

import json
import logging
import math

import pytest
import torch
from torch import nn

from trainact import activations
from trainact.activations import (
    Fourier,
    LinearCombination,
    fourier_fast,
    fourier_reference,
    linear_combination_fast,
    linear_combination_reference,
    make_activation,
)

CANDIDATES = ("relu", "sigmoid", "tanh", "linear")


def fourier_parameters(
    per_channel: bool, channels: int = 3, rank: int = 5, dtype=torch.float64
):
    """Random Fourier parameters in the module layout, as leaf tensors requiring grad."""
    generator = torch.Generator().manual_seed(1)
    lead = (channels,) if per_channel else (1,)
    shapes = [
        lead,
        lead,
        lead[:1] + (rank,) if per_channel else (rank,),
        lead[:1] + (rank,) if per_channel else (rank,),
    ]
    A, omega, a, b = (
        torch.randn(shape, generator=generator, dtype=dtype) * 0.5 for shape in shapes
    )
    omega = omega.abs() + 0.5
    return [t.requires_grad_() for t in (A, omega, a, b)]


def lc_weights(
    per_channel: bool, channels: int = 3, dtype=torch.float64
) -> torch.Tensor:
    generator = torch.Generator().manual_seed(2)
    shape = (channels, len(CANDIDATES)) if per_channel else (len(CANDIDATES),)
    # Sum about 1 (far from the guard band), individual weights of both signs.
    weights = torch.randn(shape, generator=generator, dtype=dtype) * 0.3 + 0.25
    return weights.requires_grad_()


def random_input(shape=(2, 3, 4, 5), dtype=torch.float64) -> torch.Tensor:
    generator = torch.Generator().manual_seed(3)
    return (torch.randn(shape, generator=generator, dtype=dtype) * 2).requires_grad_()


def grads_of(function, inputs):
    output = function(*inputs)
    weight = torch.linspace(-1, 1, output.numel(), dtype=output.dtype).reshape(
        output.shape
    )
    return output, torch.autograd.grad((output * weight).sum(), inputs)


# ---------------------------------------------------------------------------------------------
# Fast path against numerical and reference gradients


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (4, 3)])
def test_fourier_eager_gradcheck_and_reference(per_channel, shape):
    x = random_input(shape)
    params = fourier_parameters(per_channel)
    fast = lambda *t: fourier_fast(*t, impl="eager")  # noqa: E731
    assert torch.autograd.gradcheck(fast, (x, *params))
    fast_out, fast_grads = grads_of(fast, (x, *params))
    ref_out, ref_grads = grads_of(fourier_reference, (x, *params))
    torch.testing.assert_close(fast_out, ref_out)
    for fast_grad, ref_grad in zip(fast_grads, ref_grads, strict=True):
        torch.testing.assert_close(fast_grad, ref_grad)


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (4, 3)])
def test_lc_eager_gradcheck_and_reference(per_channel, shape):
    x = random_input(shape)
    weights = lc_weights(per_channel)
    fast = lambda x, w: linear_combination_fast(
        x, w, CANDIDATES, 1e-2, impl="eager"
    )  # noqa: E731
    reference = lambda x, w: linear_combination_reference(
        x, w, CANDIDATES, 1e-2
    )  # noqa: E731
    assert torch.autograd.gradcheck(fast, (x, weights))
    fast_out, fast_grads = grads_of(fast, (x, weights))
    ref_out, ref_grads = grads_of(reference, (x, weights))
    torch.testing.assert_close(fast_out, ref_out)
    for fast_grad, ref_grad in zip(fast_grads, ref_grads, strict=True):
        torch.testing.assert_close(fast_grad, ref_grad)


def test_fourier_gradient_is_not_the_papers_eq4():
    """d act / d a_n is cos(n w x) (the paper's eq. (4) gives -n w sin(n w x), the x-derivative)."""
    x = torch.tensor([0.3, -1.2], dtype=torch.float64)
    A, omega, a, b = fourier_parameters(per_channel=False)
    grad_a = torch.autograd.grad(
        fourier_fast(x, A, omega, a, b, impl="eager").sum(), a
    )[0]
    n = torch.arange(1, 6, dtype=torch.float64)
    expected = torch.cos(n[:, None] * omega.detach() * x).sum(1)
    torch.testing.assert_close(grad_a, expected)


@pytest.mark.slow
@pytest.mark.parametrize("per_channel", [False, True])
def test_compiled_kernels_gradcheck(per_channel):
    x = random_input((2, 3, 4, 5))
    params = fourier_parameters(per_channel)
    weights = lc_weights(per_channel)
    assert torch.autograd.gradcheck(
        lambda *t: fourier_fast(*t, impl="compiled"), (x, *params)
    )
    assert torch.autograd.gradcheck(
        lambda x, w: linear_combination_fast(x, w, CANDIDATES, 1e-2, impl="compiled"),
        (x, weights),
    )


@pytest.mark.slow
@pytest.mark.parametrize("cls", [Fourier, LinearCombination])
@pytest.mark.parametrize("per_channel", [False, True])
def test_compiled_module_float32_matches_reference(cls, per_channel):
    torch.manual_seed(0)
    module = cls(
        per_channel=per_channel,
        num_channels=6 if per_channel else None,
        impl="compiled",
    )
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.2)
    for shape in [
        (8, 6, 7, 7),
        (5, 6, 7, 7),
        (3, 6),
    ]:  # two batch sizes share one graph
        x = (torch.randn(shape) * 3).requires_grad_()
        out, grads = grads_of(lambda x, *p: module(x), (x, *module.parameters()))
        module.impl = "reference"
        ref_out, ref_grads = grads_of(
            lambda x, *p: module(x), (x, *module.parameters())
        )
        module.impl = "compiled"
        torch.testing.assert_close(out, ref_out, atol=2e-5, rtol=1e-4)
        for grad, ref_grad in zip(grads, ref_grads, strict=True):
            torch.testing.assert_close(
                grad, ref_grad, atol=1e-3, rtol=1e-4
            )  # sums over many terms


@pytest.mark.slow
def test_compiled_model_does_not_recompile_for_new_batch_sizes_or_eval():
    from trainact.models import build_model

    counters = torch._dynamo.utils.counters["stats"]
    for activation in ("fourier", "lc"):
        model = build_model("small", activation, {"impl": "compiled"})
        model(torch.rand(16, 3, 32, 32)).sum().backward()
        graphs = counters["unique_graphs"]
        model(torch.rand(7, 3, 32, 32)).sum().backward()  # last partial batch
        with torch.no_grad():
            model.eval()
            model(torch.rand(32, 3, 32, 32))
        assert counters["unique_graphs"] == graphs, activation


# ---------------------------------------------------------------------------------------------
# Linear combination specifics


@pytest.mark.parametrize("name", CANDIDATES)
@pytest.mark.parametrize("impl", ["eager", "reference"])
def test_lc_one_hot_equals_candidate(name, impl):
    module = LinearCombination(init=f"one_hot:{name}", impl=impl)
    x = torch.linspace(-6, 6, 101)
    expected = {
        "relu": torch.relu,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "linear": lambda t: t,
    }[name](x)
    torch.testing.assert_close(module(x), expected, atol=3e-7, rtol=0)


def test_lc_uniform_init_is_the_average():
    module = LinearCombination(impl="eager")
    x = torch.linspace(-3, 3, 13)
    average = (torch.relu(x) + torch.sigmoid(x) + torch.tanh(x) + x) / 4
    torch.testing.assert_close(module(x), average)
    assert module.weights.tolist() == [0.25] * 4


@pytest.mark.parametrize(
    "terms, function",
    [
        (activations._sigmoid_terms_from_exp, torch.sigmoid),
        (activations._tanh_terms_from_exp, torch.tanh),
    ],
)
def test_compiled_candidate_forms_match_torch_at_extreme_inputs(terms, function):
    """The exp(-|x|) forms used in compiled kernels: finite, within 3e-7 of torch's values and
    derivatives (the derivative compared with autograd's)."""
    x = torch.tensor(
        [-1e4, -100, -20, -3, -1e-6, 0, 1e-6, 0.5, 20, 100, 1e4]
    ).requires_grad_()
    expected = function(x)
    (expected_slope,) = torch.autograd.grad(expected.sum(), x)
    value, slope = terms(x.detach(), torch.exp(-x.detach().abs()))
    torch.testing.assert_close(value, expected.detach(), atol=3e-7, rtol=0)
    torch.testing.assert_close(slope, expected_slope, atol=3e-7, rtol=0)


@pytest.mark.parametrize("impl", ["eager", "reference"])
@pytest.mark.parametrize(
    "weight_sum, denominator", [(0.0, 1e-2), (4e-3, 1e-2), (-4e-3, -1e-2), (-0.5, -0.5)]
)
def test_lc_guard_near_zero_weight_sum(impl, weight_sum, denominator):
    """The denominator is sign(s) * max(|s|, eps), sign(0) = +1: finite values and gradients."""
    module = LinearCombination(eps=1e-2, impl=impl)
    raw = torch.tensor([0.7, -0.2, 0.5, -1.0], dtype=torch.float64)
    with torch.no_grad():
        module.weights.copy_(raw + (weight_sum - raw.sum()) / 4)
    x = torch.linspace(-2, 2, 9, requires_grad=True)
    out = module(x)
    out.sum().backward()
    acts = torch.stack([torch.relu(x), torch.sigmoid(x), torch.tanh(x), x]).detach()
    numerator = (module.weights.detach()[:, None] * acts).sum(0)
    torch.testing.assert_close(
        out.detach(), numerator / denominator, atol=1e-5, rtol=1e-5
    )
    assert torch.isfinite(x.grad).all() and torch.isfinite(module.weights.grad).all()
    inside_band = abs(weight_sum) < 1e-2
    # Inside the band the denominator is constant: d act/d w_k = act_k / denominator.
    # Outside it is eq. (8): (act_k - act) / s.
    per_point = (
        acts / denominator if inside_band else (acts - out.detach()) / weight_sum
    )
    torch.testing.assert_close(
        module.weights.grad, per_point.sum(1), atol=1e-4, rtol=1e-4
    )


def test_lc_guard_gradcheck_inside_band():
    x = random_input((2, 3, 4))
    weights = torch.tensor(
        [0.3, -0.1, 0.2, -0.398], dtype=torch.float64, requires_grad=True
    )  # sum 2e-3
    assert torch.autograd.gradcheck(
        lambda x, w: linear_combination_fast(x, w, CANDIDATES, 1e-2, impl="eager"),
        (x, weights),
    )


# ---------------------------------------------------------------------------------------------
# Fourier specifics


@pytest.mark.parametrize(
    "interval, tolerance",
    [((-4.0, 4.0), 0.1), ((-2.0, 2.0), 0.05), ((-1.0, 3.0), 0.05)],
)
def test_fourier_relu_fit_approximates_relu(interval, tolerance):
    module = Fourier(init_interval=interval, impl="reference")
    low, high = interval
    x = torch.linspace(low, high, 2001)
    assert (module.curve(x) - torch.relu(x)).abs().max() < tolerance
    # period = 1.5 x interval width; coefficients stay below the largest fitted value (no cancellation)
    assert module.omega.item() == pytest.approx(2 * math.pi / (1.5 * (high - low)))
    assert max(module.a.abs().max(), module.b.abs().max(), abs(module.A.item())) < high


def test_fourier_is_periodic_outside_the_interval():
    module = Fourier(impl="eager")
    period = 2 * math.pi / module.omega.item()
    x = torch.linspace(-4, 4, 50)
    torch.testing.assert_close(module(x + period), module(x), atol=2e-4, rtol=0)


def test_fourier_random_init():
    torch.manual_seed(0)
    module = Fourier(init="random", per_channel=True, num_channels=4)
    assert module.A.abs().max() == 0 and module.omega.tolist() == [1.0] * 4
    assert (
        0.02 < module.a.std() < 0.3
        and module.a.shape == (4, 5)
        and module.b.shape == (4, 5)
    )
    assert Fourier(init="random", omega=2.0).omega.item() == 2.0


def test_fourier_per_channel_parameters_broadcast_over_dim_1():
    module = Fourier(per_channel=True, num_channels=2, impl="eager")
    with torch.no_grad():
        module.A[1] += 10.0
    x = torch.zeros(3, 2, 4)
    out = module(x)
    single = Fourier(impl="eager")(x[:, 0])
    torch.testing.assert_close(out[:, 0], single)
    torch.testing.assert_close(out[:, 1], single + 10)


def test_per_channel_rejects_wrong_channel_count():
    module = Fourier(per_channel=True, num_channels=4)
    with pytest.raises(
        ValueError,
        match=r"4 channels expects input \(N, 4, \*\), got shape \(2, 3, 5\)",
    ):
        module(torch.zeros(2, 3, 5))


def test_half_precision_input_is_computed_in_float32():
    module = Fourier(impl="eager")
    with torch.no_grad():
        module.omega.fill_(
            3.0
        )  # high harmonics: 15 x, badly resolved in bf16 arithmetic
    x = torch.linspace(-4, 4, 1000).to(torch.bfloat16)
    out = module(x)
    assert out.dtype == torch.bfloat16
    exact = module(x.float())
    # only the final rounding to bf16 remains (bf16 has 8 bits of mantissa)
    assert ((out.float() - exact).abs() <= exact.abs() * 2**-8 + 1e-6).all()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        conv = nn.Conv2d(1, 1, 1)
        y = conv(torch.rand(2, 1, 4, 4))
        assert y.dtype == torch.bfloat16 and module(y).dtype == torch.bfloat16


# ---------------------------------------------------------------------------------------------
# Presentation: repr, parameters, curves


def test_extra_repr():
    assert repr(Fourier(rank=3, per_channel=True, num_channels=8, impl="eager")) == (
        "Fourier(rank=3, per_channel=True, num_channels=8, init='relu_fit', impl='eager')"
    )
    assert repr(Fourier(init="calibrated", impl="eager")) == (
        "Fourier(rank=5, per_channel=False, init='calibrated', calibration_sigmas=3, impl='eager')"
    )
    assert repr(LinearCombination(candidates=("relu", "tanh"))) == (
        "LinearCombination(candidates=('relu', 'tanh'), per_channel=False, init='uniform', eps=0.01, impl='auto')"
    )


@pytest.mark.parametrize(
    "module",
    [
        Fourier(),
        Fourier(per_channel=True, num_channels=3, init="random"),
        LinearCombination(per_channel=True, num_channels=2),
    ],
    ids=["fourier", "fourier-per-channel", "lc-per-channel"],
)
def test_learned_parameters_round_trip(module):
    values = module.learned_parameters()
    assert set(values) == {name for name, _ in module.named_parameters()} | {
        name for name, _ in module.named_buffers()
    }
    assert all(isinstance(v, list) for v in values.values())
    values = json.loads(json.dumps(values))  # plain floats
    clone = type(module)(
        **(
            {"per_channel": True, "num_channels": module.num_channels}
            if module.per_channel
            else {}
        )
    )
    clone.load_state_dict({name: torch.tensor(v) for name, v in values.items()})
    x = torch.linspace(-3, 3, 7)
    torch.testing.assert_close(clone.curve(x), module.curve(x))


def test_curve_shapes_and_no_grad():
    x = torch.linspace(-2, 2, 11)
    per_layer = Fourier().curve(x)
    per_channel = LinearCombination(per_channel=True, num_channels=3).curve(x)
    assert per_layer.shape == (11,) and not per_layer.requires_grad
    assert per_channel.shape == (3, 11)
    torch.testing.assert_close(
        per_channel[1], (torch.relu(x) + torch.sigmoid(x) + torch.tanh(x) + x) / 4
    )


# ---------------------------------------------------------------------------------------------
# Factory and implementation selection


def test_make_activation_builds_configured_modules():
    assert isinstance(make_activation("relu", 16, {}), nn.ReLU)
    fourier = make_activation(
        "fourier",
        16,
        {"impl": "eager", "fourier": {"rank": 3, "per_channel": True}, "hidden": 128},
    )
    assert (
        isinstance(fourier, Fourier)
        and fourier.rank == 3
        and fourier.num_channels == 16
    )
    assert fourier.impl == "eager" and fourier.a.shape == (16, 3)
    lc = make_activation(
        "lc", 16, {"impl": "eager", "lc": {"init": "one_hot:tanh", "impl": "reference"}}
    )
    assert (
        isinstance(lc, LinearCombination)
        and lc.impl == "reference"
        and lc.num_channels is None
    )
    assert lc.weights.tolist() == [0.0, 0.0, 1.0, 0.0]


@pytest.mark.parametrize(
    "name, cfg, message",
    [
        ("swish", {}, r"unknown activation 'swish'; allowed: 'relu', 'fourier', 'lc'"),
        (
            "fourier",
            {"fourier": {"degree": 5}},
            r"unknown fourier option 'degree'; allowed: 'rank', ",
        ),
        (
            "fourier",
            {"fourier": {"num_channels": 5}},
            r"unknown fourier option 'num_channels'",
        ),
        (
            "lc",
            {"impl": "fast"},
            r"unknown activation impl 'fast'; allowed: 'auto', 'compiled', 'eager', 'reference'",
        ),
        (
            "lc",
            {"lc": {"init": "one_hot:elu"}},
            r"unknown LC init 'one_hot:elu'; allowed: 'uniform', 'one_hot:relu'",
        ),
        ("lc", {"lc": {"candidates": ["relu", "elu"]}}, r"unknown LC candidate 'elu'"),
        (
            "fourier",
            {"fourier": {"init": "zeros"}},
            r"unknown Fourier init 'zeros'; allowed: 'calibrated', 'relu_fit', 'random'",
        ),
        (
            "fourier",
            {"fourier": {"init_interval": [2, -2]}},
            r"low < high, got \[2, -2\]",
        ),
        (
            "lc",
            {"lc": "uniform"},
            r"model config 'lc' must be a dict of options, got 'uniform'",
        ),
    ],
)
def test_make_activation_errors_name_the_bad_value(name, cfg, message):
    with pytest.raises(ValueError, match=message):
        make_activation(name, 8, cfg)


def test_auto_impl_falls_back_to_eager_once_when_compilation_fails(monkeypatch, caplog):
    def broken_compile(function, **options):
        def fail(*args):
            raise RuntimeError("no compiler here")

        return fail

    monkeypatch.setattr(
        activations, "_COMPILER", activations._KernelCompiler(broken_compile)
    )
    x = torch.linspace(-2, 2, 9, requires_grad=True)
    with caplog.at_level(logging.WARNING, logger="trainact.activations"):
        for module in (Fourier(), LinearCombination()):
            out = module(x)
            out.sum().backward()
            module.impl = "reference"
            torch.testing.assert_close(out, module(x))
    warnings = [
        r
        for r in caplog.records
        if "torch.compile of the activation kernels failed" in r.message
    ]
    assert (
        len(warnings) == 1
        and "RuntimeError: no compiler here" in warnings[0].getMessage()
    )
    with pytest.raises(RuntimeError, match="no compiler here"):
        Fourier(impl="compiled")(x)
