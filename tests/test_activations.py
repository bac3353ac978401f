"""Trainable activations: fast kernels against the reference formulas, guards, init, factory."""

from __future__ import annotations

import json
import logging
import math

import pytest
import torch
from torch import nn

from trainact.nn import activations
from trainact.nn.activations import (
    Fourier,
    GainReLU,
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
    assert "compiled" in activations.kernel_report()["implementations"]


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
    from trainact.nn.models import build_model

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


# The weight normalisation inside the kernels, around the guard band. eps is dyadic and so are the
# weights, so every weight sum below is exact in float32 in any summation order, and |s| = eps holds
# exactly where intended.
GUARD_EPS = 2.0**-6
# weight sums in multiples of eps: inside the band (both signs, 0), at its edges, outside
GUARD_SUMS = {
    "inside+": 0.5,
    "inside-": -0.5,
    "zero": 0.0,
    "at+eps": 1.0,
    "at-eps": -1.0,
    "outside+": 1.5,
    "outside-": -1.5,
    "far-": -64.0,
}
# for gradcheck: more than its finite-difference step (1e-6) from the kinks at |s| = eps and the
# sign flip at s = 0
SMOOTH_SUMS = ("inside+", "inside-", "outside+", "outside-", "far-")


def guard_weights(names, dtype=torch.float64, per_channel=True) -> torch.Tensor:
    """One row of 4 dyadic weights per name in ``names``, summing to ``GUARD_SUMS[name] * GUARD_EPS``;
    shape ``(len(names), 4)`` per channel, ``(4,)`` per layer (one name), requiring grad.
    """
    rows = torch.tensor([0.5, -0.25, 0.375, -0.625], dtype=torch.float64).repeat(
        len(names), 1
    )  # each row sums to 0
    rows[:, 3] += (
        torch.tensor([GUARD_SUMS[n] for n in names], dtype=torch.float64) * GUARD_EPS
    )
    weights = rows if per_channel else rows[0]
    return weights.to(dtype).requires_grad_()


def guard_cases(names):
    """(weights names, per_channel): each name per layer, all of them as channels of one layer."""
    return [pytest.param((name,), False, id=f"per_layer-{name}") for name in names] + [
        pytest.param(tuple(names), True, id="per_channel")
    ]


def lc_functions(impl, eps=GUARD_EPS):
    fast = lambda x, w: linear_combination_fast(
        x, w, CANDIDATES, eps, impl=impl
    )  # noqa: E731
    reference = lambda x, w: linear_combination_reference(
        x, w, CANDIDATES, eps
    )  # noqa: E731
    return fast, reference


def assert_close_to_reference(fast_results, ref_results, dtype):
    """Outputs and gradients; float32 relative to the largest entry (up to 1/eps = 64 times the
    numerator inside the band; the compiled sigmoid and tanh differ from torch's by 2e-7).
    """
    for fast, ref in zip(fast_results, ref_results, strict=True):
        if dtype == torch.float64:
            torch.testing.assert_close(fast, ref)
        else:
            scale = ref.abs().max().item()
            torch.testing.assert_close(fast, ref, rtol=1e-5, atol=2e-5 * scale)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(
    "impl", ["eager", pytest.param("compiled", marks=pytest.mark.slow)]
)
@pytest.mark.parametrize("names, per_channel", guard_cases(GUARD_SUMS))
def test_lc_guard_gradients_match_reference(names, per_channel, impl, dtype):
    """Values and gradients (x and raw weights) of the kernels' normalisation equal autograd's for
    the reference inside the band, at |sum w| = eps exactly, at 0 and outside, for both signs.
    """
    weights = guard_weights(names, dtype, per_channel)
    x = random_input((2, len(names) if per_channel else 3, 4, 5), dtype)
    fast, reference = lc_functions(impl)
    fast_out, fast_grads = grads_of(fast, (x, weights))
    ref_out, ref_grads = grads_of(reference, (x, weights))
    assert fast_out.dtype == dtype and fast_grads[1].dtype == dtype
    assert_close_to_reference((fast_out, *fast_grads), (ref_out, *ref_grads), dtype)


@pytest.mark.parametrize(
    "impl", ["eager", pytest.param("compiled", marks=pytest.mark.slow)]
)
@pytest.mark.parametrize("names, per_channel", guard_cases(SMOOTH_SUMS))
def test_lc_guard_gradcheck(names, per_channel, impl):
    weights = guard_weights(names, torch.float64, per_channel)
    x = random_input((2, len(names) if per_channel else 3, 4), torch.float64)
    fast, _ = lc_functions(impl)
    assert torch.autograd.gradcheck(fast, (x, weights))


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_lc_guard_edge_gradient_is_the_bands(sign):
    """At |s| = eps exactly the denominator's derivative is 0, as inside the band (autograd's
    clamp_min passes no gradient at its bound): d act / d w_k = act_k / (+-eps), not eq. (8).
    """
    weights = guard_weights(("at+eps" if sign > 0 else "at-eps",), per_channel=False)
    x = torch.linspace(-2, 2, 9, dtype=torch.float64)
    out = linear_combination_fast(x, weights, CANDIDATES, GUARD_EPS, impl="eager")
    (grad,) = torch.autograd.grad(out.sum(), weights)
    acts = torch.stack([torch.relu(x), torch.sigmoid(x), torch.tanh(x), x])
    torch.testing.assert_close(grad, (acts / (sign * GUARD_EPS)).sum(1))
    eq8 = ((acts - out.detach()) / (sign * GUARD_EPS)).sum(1)
    assert (grad - eq8).abs().max() > 1  # the two one-sided derivatives differ


@pytest.mark.parametrize(
    "impl", ["eager", pytest.param("compiled", marks=pytest.mark.slow)]
)
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_lc_guard_at_float32_eps_matches_reference(impl, sign):
    """Float32 weights summing to float32(0.01) exactly, eps = 0.01: the reference compares in
    float32, so this is the band's edge (derivative 0), and the kernels agree."""
    weights = torch.tensor([sign * 0.01, 0.0, 0.0, 0.0], requires_grad=True)
    assert abs(weights.sum().item()) == torch.tensor(0.01).item()
    x = random_input((2, 3, 4, 5), torch.float32)
    fast, reference = lc_functions(impl, eps=1e-2)
    fast_out, fast_grads = grads_of(fast, (x, weights))
    ref_out, ref_grads = grads_of(reference, (x, weights))
    assert_close_to_reference(
        (fast_out, *fast_grads), (ref_out, *ref_grads), torch.float32
    )


def test_lc_fast_is_one_autograd_node():
    """The normalisation happens inside the kernels: nothing but the custom function (and the
    input's reshape) between the output and the raw weights."""
    weights = lc_weights(per_channel=True)
    out = linear_combination_fast(
        random_input(), weights, CANDIDATES, 1e-2, impl="eager"
    )
    node = out.grad_fn  # the view back to x's shape
    while "LinearCombination" not in type(node).__name__:
        node = node.next_functions[0][0]
    # the second input of the custom node: the AccumulateGrad of the raw weights
    assert node.next_functions[1][0].variable is weights


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


# ---------------------------------------------------------------------------------------------
# "auto": fall back to eager on compiler failures only; the record of what ran


class FakeCompile:
    """``compile_fn`` for ``_KernelCompiler``: the "compiled" function runs the kernel itself,
    after raising ``errors`` (one per call, in order; ``always``: on every call).
    ``fail_kernels``: only these kernels raise (the others "compile" fine)."""

    def __init__(self, *errors, always=None, fail_kernels=None):
        self.errors, self.always, self.fail_kernels = list(errors), always, fail_kernels
        self.calls = 0

    def __call__(self, kernel, **options):
        def compiled(*args):
            self.calls += 1
            if self.fail_kernels is None or kernel in self.fail_kernels:
                if self.errors:
                    raise self.errors.pop(0)
                if self.always is not None:
                    raise self.always()
            return kernel(*args)

        return compiled


@pytest.fixture
def compiler(monkeypatch):
    """Install a fresh ``_KernelCompiler(compile_fn)`` and an empty record of what ran."""
    monkeypatch.setattr(activations, "_IMPLEMENTATIONS_RUN", set())

    def install(compile_fn=torch.compile):
        fresh = activations._KernelCompiler(compile_fn)
        monkeypatch.setattr(activations, "_COMPILER", fresh)
        return fresh

    install()
    return install


def _no_cxx():
    return torch._inductor.exc.InductorError(
        torch._inductor.exc.InvalidCxxCompiler(), None
    )


def _compiler_failures():
    import torch._dynamo.exc
    import torch._inductor.exc

    return {
        "missing-cxx": _no_cxx,
        "backend": lambda: torch._dynamo.exc.BackendCompilerFailed(
            torch.compile, RuntimeError("no compiler here"), None
        ),
        "unsupported": lambda: torch._dynamo.exc.Unsupported("no compiler here"),
        "cpp-compile": lambda: torch._inductor.exc.CppCompileError(
            ["g++"], "no compiler here"
        ),
    }


def _fallback_warnings(caplog):
    return [
        r
        for r in caplog.records
        if "torch.compile of the activation kernels failed" in r.getMessage()
    ]


@pytest.mark.parametrize("failure", list(_compiler_failures()))
def test_auto_impl_falls_back_to_eager_once_when_compilation_fails(
    compiler, caplog, failure
):
    make_error = _compiler_failures()[failure]
    fake = FakeCompile(always=make_error)
    state = compiler(fake)
    x = torch.linspace(-2, 2, 9, requires_grad=True)
    with caplog.at_level(logging.WARNING, logger="trainact.nn.activations"):
        for module in (Fourier(), LinearCombination()):
            out = module(x)
            (grad_x,) = torch.autograd.grad(out.sum(), x)
            module.impl = "reference"
            ref = module(x)
            torch.testing.assert_close(out, ref)
            torch.testing.assert_close(grad_x, torch.autograd.grad(ref.sum(), x)[0])
    expected = activations._describe(make_error())
    warnings = _fallback_warnings(caplog)
    assert len(warnings) == 1 and expected in warnings[0].getMessage()
    assert "\n" not in warnings[0].getMessage()  # one log line
    assert state.failed and state.failure == expected
    assert fake.calls == 1  # after the failure, no compiled call is even tried
    assert activations.kernel_report() == {
        "implementations": ["eager", "reference"],
        "compile_failure": expected,
    }
    # "compiled" never falls back
    with pytest.raises(type(make_error()), match="no compiler here|C\\+\\+ compiler"):
        Fourier(impl="compiled")(x)


def test_missing_cxx_failure_is_described_with_the_inner_error(compiler):
    compiler(FakeCompile(always=_no_cxx))
    LinearCombination()(torch.linspace(-2, 2, 9))
    failure = activations.kernel_report()["compile_failure"]
    assert failure.startswith(
        "InductorError: InvalidCxxCompiler: No working C++ compiler"
    )


def test_compile_fn_that_raises_itself_counts_as_a_compiler_failure(compiler, caplog):
    def unsupported_platform(function, **options):
        raise RuntimeError("torch.compile is not supported on this Python")

    state = compiler(unsupported_platform)
    x = torch.linspace(-2, 2, 9)
    with caplog.at_level(logging.WARNING, logger="trainact.nn.activations"):
        LinearCombination()(x)
    assert state.failed and len(_fallback_warnings(caplog)) == 1
    with pytest.raises(RuntimeError, match="not supported on this Python"):
        LinearCombination(impl="compiled")(x)


def _oom():
    return torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


@pytest.mark.parametrize(
    "make_error",
    [
        _oom,
        lambda: RuntimeError(
            "The size of tensor a (3) must match the size of tensor b (4)"
        ),
        # dynamo's wrapper of an error of the traced code itself (a shape error while tracing)
        lambda: torch._dynamo.exc.TorchRuntimeError(
            "RuntimeError when making fake tensor call"
        ),
        # out of memory while compiling (autotuning) is not a reason to run eagerly for good
        lambda: torch._dynamo.exc.BackendCompilerFailed(torch.compile, _oom(), None),
        lambda: torch._inductor.exc.InductorError(_oom(), None),
    ],
    ids=["oom", "runtime-error", "torch-runtime-error", "backend-oom", "inductor-oom"],
)
def test_auto_impl_propagates_other_errors_and_keeps_compiling(
    compiler, caplog, make_error
):
    import torch._dynamo.exc  # noqa: F401  (the lambdas above)
    import torch._inductor.exc  # noqa: F401

    error = make_error()
    fake = FakeCompile(error)
    state = compiler(fake)
    module = LinearCombination()
    x = torch.linspace(-2, 2, 9, requires_grad=True)
    with caplog.at_level(logging.WARNING, logger="trainact.nn.activations"):
        with pytest.raises(type(error)) as raised:
            module(x)
        assert raised.value is error  # unchanged
        assert not state.failed and state.failure is None
        assert activations.kernel_report() == {
            "implementations": [],
            "compile_failure": None,
        }
        out = module(x)  # the next call tries the compiled path again, and it runs
        out.sum().backward()
    assert fake.calls == 3  # failed forward, forward, backward
    assert not state.failed and not _fallback_warnings(caplog)
    assert activations.kernel_report() == {
        "implementations": ["compiled"],
        "compile_failure": None,
    }
    module.impl = "reference"
    torch.testing.assert_close(out, module(x))


def test_is_compiler_failure_classes():
    import torch._dynamo.exc
    import torch._inductor.exc

    assert activations._is_compiler_failure(_no_cxx())
    assert activations._is_compiler_failure(torch._inductor.exc.InvalidCxxCompiler())
    assert activations._is_compiler_failure(torch._dynamo.exc.Unsupported("x"))
    assert not activations._is_compiler_failure(_oom())
    assert not activations._is_compiler_failure(RuntimeError("x"))
    assert not activations._is_compiler_failure(
        torch._dynamo.exc.TorchRuntimeError("x")
    )
    types = activations._compiler_failure_types()
    assert torch._dynamo.exc.BackendCompilerFailed in types
    assert torch._inductor.exc.CppCompileError in types


def test_kernel_report_of_each_implementation(compiler):
    x = torch.linspace(-2, 2, 9, requires_grad=True)
    report = activations.kernel_report
    assert report() == {"implementations": [], "compile_failure": None}
    # a ReLU network never calls the kernels
    relu = nn.Sequential(nn.Linear(9, 4), make_activation("relu", 4, {}))
    relu(x).sum().backward()
    assert report() == {"implementations": [], "compile_failure": None}
    # curves (plots) use the reference formula but are no activation outputs of the network
    LinearCombination(impl="reference").curve(x)
    assert report()["implementations"] == []
    LinearCombination(impl="reference")(x)
    assert report() == {"implementations": ["reference"], "compile_failure": None}
    activations.reset_kernel_report()
    Fourier(impl="eager")(x).sum().backward()
    assert report() == {"implementations": ["eager"], "compile_failure": None}
    activations.reset_kernel_report()
    compiler(FakeCompile())  # "compiles" to the kernel itself
    for impl in ("auto", "compiled"):
        LinearCombination(impl=impl)(x).sum().backward()
        assert report() == {"implementations": ["compiled"], "compile_failure": None}
    assert json.loads(json.dumps(report())) == report()  # fit for summary.json


def test_kernel_report_after_a_fallback_between_forward_and_backward(compiler):
    """The forward kernel compiles, the backward kernel does not: both paths ran."""
    fake = FakeCompile(always=_no_cxx, fail_kernels={activations._lc_backward_kernel})
    compiler(fake)
    x = torch.linspace(-2, 2, 9, requires_grad=True)
    LinearCombination()(x).sum().backward()
    report = activations.kernel_report()
    assert report["implementations"] == ["compiled", "eager"]
    assert report["compile_failure"].startswith("InductorError: InvalidCxxCompiler")
    # the reset forgets what ran, not the failure, which still decides what "auto" runs
    activations.reset_kernel_report()
    LinearCombination()(x).sum().backward()
    assert activations.kernel_report() == {
        "implementations": ["eager"],
        "compile_failure": report["compile_failure"],
    }


@pytest.mark.slow
def test_real_compile_shape_error_propagates_without_fallback(compiler):
    """With torch.compile itself: a caller's shape error (per-channel weights for 5 channels on an
    input with 3) surfaces as an exception, and "auto" keeps the compiled kernels."""
    state = compiler(torch.compile)
    x = torch.randn(2, 3, 4)
    weights = torch.ones(5, 4)
    with pytest.raises(RuntimeError):
        linear_combination_fast(x, weights, CANDIDATES, 1e-2, impl="auto")
    assert not state.failed and state.failure is None


_NO_CXX_SCRIPT = """
import json, torch
from trainact.nn import activations
x = torch.linspace(-2, 2, 9, requires_grad=True)
activations.LinearCombination()(x).sum().backward()
print(json.dumps(activations.kernel_report()))
"""


@pytest.mark.slow
def test_real_missing_cxx_compiler_falls_back(tmp_path):
    """In a fresh process whose C++ compiler does not exist, "auto" runs eagerly and reports why."""
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "CXX": str(tmp_path / "no-such-g++"),
        "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor"),
    }
    result = subprocess.run(
        [sys.executable, "-c", _NO_CXX_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["implementations"] == ["eager"]
    assert report["compile_failure"].startswith(
        "InductorError: InvalidCxxCompiler: No working C++ compiler"
    ), report
    assert result.stderr.count("torch.compile of the activation kernels failed") == 1


# ------------------------------------------------------------------ compiled path, fast subset


def test_compiled_path_on_a_tiny_input_matches_the_reference(compiler):
    """The real torch.compile kernels (not the FakeCompile stand-in) on six float32 values: the
    output and the gradients of x and of every parameter agree with the reference formula.
    In the fast subset on purpose: the compiled kernels are what a training run uses."""
    x = torch.tensor([-2.5, -1.0, -0.1, 0.0, 0.7, 3.0]).requires_grad_()
    A = torch.tensor([0.2], requires_grad=True)
    omega = torch.tensor([0.8], requires_grad=True)
    a = torch.tensor([0.5, -0.3], requires_grad=True)
    b = torch.tensor([0.4, 0.1], requires_grad=True)
    out, grads = grads_of(
        lambda *t: fourier_fast(*t, impl="compiled"), (x, A, omega, a, b)
    )
    ref_out, ref_grads = grads_of(fourier_reference, (x, A, omega, a, b))
    torch.testing.assert_close(out, ref_out, atol=1e-6, rtol=1e-5)
    for grad, ref_grad in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(grad, ref_grad, atol=1e-5, rtol=1e-5)
    assert activations.kernel_report()["implementations"] == ["compiled"]


# ------------------------------------------------------------------ reference formulas, pinned values


def test_guarded_weight_sum_by_hand_and_in_the_input_dtype():
    s = torch.tensor([0.5, -0.5, 0.004, -0.004, 0.0, 0.01, -0.01], dtype=torch.float64)
    expected = [0.5, -0.5, 0.01, -0.01, 0.01, 0.01, -0.01]
    assert activations.guarded_weight_sum(s, 0.01).tolist() == pytest.approx(expected)
    for dtype in (torch.float16, torch.bfloat16, torch.float64):
        guarded = activations.guarded_weight_sum(torch.tensor([-0.25, 0.0], dtype=dtype), 0.5)
        assert guarded.dtype == dtype and guarded.tolist() == [-0.5, 0.5]


def test_candidate_terms_keep_the_input_dtype():
    x = torch.tensor([-1.0, 0.0, 2.0], dtype=torch.float64)
    for terms in (activations._relu_terms, activations._linear_terms, activations._sigmoid_terms, activations._tanh_terms):
        value, derivative = terms(x, None)
        assert value.dtype == derivative.dtype == torch.float64, terms
    assert activations._relu_terms(x, None)[1].tolist() == [0.0, 0.0, 1.0]  # ReLU' (0) = 0


def test_linear_combination_reference_needs_one_weight_per_candidate():
    x = torch.linspace(-1, 1, 5)
    with pytest.raises(ValueError):
        linear_combination_reference(x, torch.ones(3), CANDIDATES, 1e-2)
    with pytest.raises(ValueError):
        linear_combination_reference(torch.ones(2, 3), torch.ones(3, 5), CANDIDATES, 1e-2)


# ---------------------------------------------------------------------------------------------
# GainReLU: the control with LC's parameter count


def gain_relu_reference(x: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
    """``(sum_i g_i) relu(x)``, the gains summed over their last dimension, per channel over dim 1."""
    gain = gains.sum(-1)
    if gains.dim() == 2:
        gain = gain.reshape((1, -1) + (1,) * (x.dim() - 2))
    return gain * torch.relu(x)


@pytest.mark.parametrize("candidates", [CANDIDATES, ("relu",), ("relu", "tanh"), ("relu", "sigmoid", "tanh")])
@pytest.mark.parametrize("per_channel", [False, True])
def test_gain_relu_has_lcs_parameter_count_and_starts_as_relu(candidates, per_channel):
    cfg = {"lc": {"candidates": list(candidates), "per_channel": per_channel}, "relu_gain": True}
    gain_relu, lc = make_activation("relu", 3, cfg), make_activation("lc", 3, cfg)
    assert isinstance(gain_relu, GainReLU)
    assert gain_relu.gains.shape == lc.weights.shape
    assert sum(p.numel() for p in gain_relu.parameters()) == sum(p.numel() for p in lc.parameters())
    x = torch.randn(5, 3, 4, 4) * 3
    assert torch.equal(gain_relu(x), torch.relu(x))  # bit for bit, also in half precision
    assert torch.equal(gain_relu(x.bfloat16()), torch.relu(x.bfloat16()))


def test_gain_relu_without_the_option_is_plain_relu():
    assert type(make_activation("relu", 3, {"relu_gain": False, "lc": {"per_channel": True}})) is nn.ReLU


@pytest.mark.parametrize("per_channel, shape", [(False, (2, 3, 4, 5)), (True, (2, 3, 4, 5)), (True, (4, 3))])
def test_gain_relu_gradcheck_and_reference(per_channel, shape):
    module = GainReLU(4, per_channel=per_channel, num_channels=3 if per_channel else None).double()
    with torch.no_grad():
        module.gains.copy_(torch.randn(module.gains.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64))
    x = random_input(shape)
    assert torch.autograd.gradcheck(lambda x, g: gain_relu_reference(x, g), (x, module.gains))
    ours = grads_of(lambda x: module(x), [x])[1] + torch.autograd.grad(
        (module(x) * torch.linspace(-1, 1, x.numel(), dtype=x.dtype).reshape(x.shape)).sum(), module.gains
    )
    theirs = grads_of(lambda x, g: gain_relu_reference(x, g), [x, module.gains])[1]
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    torch.testing.assert_close(module(x), gain_relu_reference(x, module.gains), rtol=0, atol=0)


def test_gain_relu_repr_parameters_and_curve():
    module = GainReLU(4, per_channel=True, num_channels=2)
    assert repr(module) == "GainReLU(num_gains=4, per_channel=True, num_channels=2)"
    assert repr(GainReLU(3)) == "GainReLU(num_gains=3, per_channel=False)"
    assert module.learned_parameters() == {"gains": [[0.25] * 4] * 2}
    torch.testing.assert_close(module.curve(torch.linspace(-1, 1, 3)), torch.tensor([[0.0, 0.0, 1.0]] * 2))
    with pytest.raises(ValueError, match="num_gains"):
        GainReLU(0)
    with pytest.raises(ValueError, match="per_channel=True needs num_channels"):
        GainReLU(4, per_channel=True)
