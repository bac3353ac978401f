"""The reference formulas (trainact.nn.reference): pinned values, dtypes, shape errors."""

from __future__ import annotations

import pytest
import torch
from activation_inputs import CANDIDATES

from trainact.nn.reference import guarded_weight_sum, linear_combination_reference


def test_guarded_weight_sum_by_hand_and_in_the_input_dtype():
    s = torch.tensor([0.5, -0.5, 0.004, -0.004, 0.0, 0.01, -0.01], dtype=torch.float64)
    expected = [0.5, -0.5, 0.01, -0.01, 0.01, 0.01, -0.01]
    assert guarded_weight_sum(s, 0.01).tolist() == pytest.approx(expected)
    for dtype in (torch.float16, torch.bfloat16, torch.float64):
        guarded = guarded_weight_sum(torch.tensor([-0.25, 0.0], dtype=dtype), 0.5)
        assert guarded.dtype == dtype and guarded.tolist() == [-0.5, 0.5]


def test_linear_combination_reference_needs_one_weight_per_candidate():
    x = torch.linspace(-1, 1, 5)
    with pytest.raises(ValueError):
        linear_combination_reference(x, torch.ones(3), CANDIDATES, 1e-2)
    with pytest.raises(ValueError):
        linear_combination_reference(torch.ones(2, 3), torch.ones(3, 5), CANDIDATES, 1e-2)
