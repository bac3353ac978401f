"""The LC candidates in the kernels' (value, derivative) forms (trainact.nn.candidates)."""

from __future__ import annotations

import pytest
import torch

from trainact.nn import candidates


@pytest.mark.parametrize(
    "terms, function",
    [
        (candidates._sigmoid_terms_from_exp, torch.sigmoid),
        (candidates._tanh_terms_from_exp, torch.tanh),
    ],
)
def test_compiled_candidate_forms_match_torch_at_extreme_inputs(terms, function):
    """The exp(-|x|) forms used in compiled kernels: finite, within 3e-7 of torch's values and
    derivatives (the derivative compared with autograd's)."""
    x = torch.tensor([-1e4, -100, -20, -3, -1e-6, 0, 1e-6, 0.5, 20, 100, 1e4]).requires_grad_()
    expected = function(x)
    (expected_slope,) = torch.autograd.grad(expected.sum(), x)
    value, slope = terms(x.detach(), torch.exp(-x.detach().abs()))
    torch.testing.assert_close(value, expected.detach(), atol=3e-7, rtol=0)
    torch.testing.assert_close(slope, expected_slope, atol=3e-7, rtol=0)


def test_candidate_terms_keep_the_input_dtype():
    x = torch.tensor([-1.0, 0.0, 2.0], dtype=torch.float64)
    for terms in (
        candidates._relu_terms,
        candidates._linear_terms,
        candidates._sigmoid_terms,
        candidates._tanh_terms,
    ):
        value, derivative = terms(x, None)
        assert value.dtype == derivative.dtype == torch.float64, terms
    assert candidates._relu_terms(x, None)[1].tolist() == [0.0, 0.0, 1.0]  # ReLU' (0) = 0
