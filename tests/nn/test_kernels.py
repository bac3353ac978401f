"""The fast kernels (trainact.nn.kernels) against numerical gradients and the reference formulas,
around the LC guard band too."""

from __future__ import annotations

import pytest
import torch
from activation_inputs import (
    CANDIDATES,
    fourier_parameters,
    grads_of,
    lc_weights,
    random_input,
)

from trainact.nn.kernel_compiler import kernel_report
from trainact.nn.kernels import fourier_fast, linear_combination_fast
from trainact.nn.reference import fourier_reference, linear_combination_reference


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
    fast = lambda x, w: linear_combination_fast(x, w, CANDIDATES, 1e-2, impl="eager")  # noqa: E731
    reference = lambda x, w: linear_combination_reference(x, w, CANDIDATES, 1e-2)  # noqa: E731
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
    grad_a = torch.autograd.grad(fourier_fast(x, A, omega, a, b, impl="eager").sum(), a)[0]
    n = torch.arange(1, 6, dtype=torch.float64)
    expected = torch.cos(n[:, None] * omega.detach() * x).sum(1)
    torch.testing.assert_close(grad_a, expected)


@pytest.mark.slow
@pytest.mark.parametrize("per_channel", [False, True])
def test_compiled_kernels_gradcheck(per_channel):
    x = random_input((2, 3, 4, 5))
    params = fourier_parameters(per_channel)
    weights = lc_weights(per_channel)
    assert torch.autograd.gradcheck(lambda *t: fourier_fast(*t, impl="compiled"), (x, *params))
    assert torch.autograd.gradcheck(
        lambda x, w: linear_combination_fast(x, w, CANDIDATES, 1e-2, impl="compiled"),
        (x, weights),
    )
    assert "compiled" in kernel_report()["implementations"]


def test_lc_guard_gradcheck_inside_band():
    x = random_input((2, 3, 4))
    weights = torch.tensor([0.3, -0.1, 0.2, -0.398], dtype=torch.float64, requires_grad=True)  # sum 2e-3
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
    rows[:, 3] += torch.tensor([GUARD_SUMS[n] for n in names], dtype=torch.float64) * GUARD_EPS
    weights = rows if per_channel else rows[0]
    return weights.to(dtype).requires_grad_()


def guard_cases(names):
    """(weights names, per_channel): each name per layer, all of them as channels of one layer."""
    return [pytest.param((name,), False, id=f"per_layer-{name}") for name in names] + [
        pytest.param(tuple(names), True, id="per_channel")
    ]


def lc_functions(impl, eps=GUARD_EPS):
    fast = lambda x, w: linear_combination_fast(x, w, CANDIDATES, eps, impl=impl)  # noqa: E731
    reference = lambda x, w: linear_combination_reference(x, w, CANDIDATES, eps)  # noqa: E731
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
@pytest.mark.parametrize("impl", ["eager", pytest.param("compiled", marks=pytest.mark.slow)])
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


@pytest.mark.parametrize("impl", ["eager", pytest.param("compiled", marks=pytest.mark.slow)])
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


@pytest.mark.parametrize("impl", ["eager", pytest.param("compiled", marks=pytest.mark.slow)])
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
    assert_close_to_reference((fast_out, *fast_grads), (ref_out, *ref_grads), torch.float32)


def test_lc_fast_is_one_autograd_node():
    """The normalisation happens inside the kernels: nothing but the custom function (and the
    input's reshape) between the output and the raw weights."""
    weights = lc_weights(per_channel=True)
    out = linear_combination_fast(random_input(), weights, CANDIDATES, 1e-2, impl="eager")
    node = out.grad_fn  # the view back to x's shape
    while "LinearCombination" not in type(node).__name__:
        node = node.next_functions[0][0]
    # the second input of the custom node: the AccumulateGrad of the raw weights
    assert node.next_functions[1][0].variable is weights
