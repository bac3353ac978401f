"""A trainable activation fused with the 2x2 max-pool (trainact.nn.pool_kernels): values and
gradients against the activation followed by max_pool2d (float64, gradcheck), ties and NaN as in
ATen's max-pool, the C++ and the torch-op forms of the window selection, the fallback when the C++
extension cannot be built, and the conv stages of the models."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F
from activation_inputs import CANDIDATES, fourier_parameters, grads_of, lc_weights, random_input

from trainact.nn import kernel_compiler, pool_kernels
from trainact.nn.fourier import Fourier
from trainact.nn.kernel_compiler import ExtensionBuilder
from trainact.nn.kernels import fourier_fast, linear_combination_fast
from trainact.nn.linear_combination import LinearCombination
from trainact.nn.models import build_model
from trainact.nn.pool_kernels import fourier_max_pool_fast, linear_combination_max_pool_fast
from trainact.nn.reference import fourier_reference, linear_combination_reference

IMPLS = ["auto", "eager"]  # auto: the C++ window selection on the CPU; eager: its torch-op form


def _fourier_pair(impl):
    fused = lambda x, *p: fourier_max_pool_fast(x, *p, impl=impl)  # noqa: E731
    reference = lambda x, *p: F.max_pool2d(fourier_reference(x, *p), 2)  # noqa: E731
    return fused, reference


def _lc_pair(impl, eps=1e-2):
    fused = lambda x, w: linear_combination_max_pool_fast(x, w, CANDIDATES, eps, impl=impl)  # noqa: E731
    reference = lambda x, w: F.max_pool2d(linear_combination_reference(x, w, CANDIDATES, eps), 2)  # noqa: E731
    return fused, reference


def _assert_same(fused, reference, inputs):
    out, grads = grads_of(fused, inputs)
    ref_out, ref_grads = grads_of(reference, inputs)
    torch.testing.assert_close(out, ref_out)
    for grad, ref_grad in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(grad, ref_grad)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("per_channel", [False, True])
def test_fourier_max_pool_gradcheck_and_reference(impl, per_channel):
    x = random_input((2, 3, 4, 6))
    params = fourier_parameters(per_channel)
    fused, reference = _fourier_pair(impl)
    assert torch.autograd.gradcheck(fused, (x, *params))
    _assert_same(fused, reference, (x, *params))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("per_channel", [False, True])
def test_lc_max_pool_gradcheck_and_reference(impl, per_channel):
    x = random_input((2, 3, 4, 6))
    weights = lc_weights(per_channel)
    fused, reference = _lc_pair(impl)
    assert torch.autograd.gradcheck(fused, (x, weights))
    _assert_same(fused, reference, (x, weights))


@pytest.mark.parametrize("impl", IMPLS)
def test_ties_go_to_the_first_maximum_in_scan_order(impl):
    # LC one-hot on ReLU: every window of negative inputs is a tie at 0, and the gradient with
    # respect to the other weights depends on which input won (sigmoid, tanh, x differ there)
    x = -torch.rand(2, 3, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) - 0.1
    x[0, 0, 0, 1] = x[0, 0, 1, 0] = 0.5  # a tie of positive values at positions 1 and 2
    x.requires_grad_()
    weights = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64, requires_grad=True)
    _assert_same(*_lc_pair(impl), (x, weights))


@pytest.mark.parametrize("impl", IMPLS)
def test_fp32_module_max_pool_equals_module_then_max_pool(impl):
    x = torch.randn(4, 5, 8, 6, generator=torch.Generator().manual_seed(4)) * 3
    for module in (Fourier(impl=impl), LinearCombination(impl=impl, init="uniform")):
        pooled = module.max_pool(x)
        torch.testing.assert_close(pooled, F.max_pool2d(module(x), 2))


def test_odd_sizes_and_reference_take_the_unfused_path():
    x = torch.randn(2, 3, 5, 4)
    module = Fourier()
    torch.testing.assert_close(module.max_pool(x), F.max_pool2d(module(x), 2))
    with pytest.raises(ValueError, match="even H and W"):
        fourier_max_pool_fast(x, *fourier_parameters(False, dtype=torch.float32))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_cpp_and_torch_op_window_selection_agree_with_max_pool(dtype):
    generator = torch.Generator().manual_seed(5)
    y = torch.randint(-2, 3, (3, 4, 6, 8), generator=generator).to(dtype)  # many ties
    y[0, 0, 0, 0] = y[1, 2, 3, 3] = float("nan")
    x = torch.randn(y.shape, generator=generator).to(dtype)
    pooled, index = F.max_pool2d_with_indices(y, 2)
    extension = pool_kernels.EXTENSION.get("compiled")
    n, c, h, w = y.shape
    windows = (n, c, h // 2, 2, w // 2, 2)
    cpp = extension.pool_select(y, x)
    torch_op = pool_kernels._select_kernel(y.view(windows), x.view(windows))
    # ATen's flat index in the plane -> position in the window
    row, column = index // w % 2, index % w % 2
    expected_position = (2 * row + column).to(torch.int8)
    expected_x = x.flatten(2).gather(2, index.flatten(2)).view(pooled.shape)
    for got_pooled, got_x, got_position in (cpp, torch_op):
        torch.testing.assert_close(got_pooled, pooled, equal_nan=True, rtol=0, atol=0)
        torch.testing.assert_close(got_position, expected_position, rtol=0, atol=0)
        torch.testing.assert_close(got_x, expected_x, rtol=0, atol=0)
    grad = torch.randn(pooled.shape, generator=generator).to(dtype)
    expected_grad = torch.ops.aten.max_pool2d_with_indices_backward(
        grad, y, [2, 2], [2, 2], [0, 0], [1, 1], False, index
    )
    position = expected_position.contiguous()
    torch.testing.assert_close(extension.pool_unpool(grad, position), expected_grad, rtol=0, atol=0)
    unpooled = pool_kernels._unpool_kernel(grad, position).reshape(y.shape)
    torch.testing.assert_close(unpooled, expected_grad, rtol=0, atol=0)


def test_compiled_torch_op_form_equals_eager():
    # the form that runs on CUDA (compiled there); here compiled for the CPU
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(6))
    n, c, h, w = x.shape
    windows = (n, c, h // 2, 2, w // 2, 2)
    y = torch.sin(3 * x)
    eager = pool_kernels._select_kernel(y.view(windows), x.view(windows))
    compiled = kernel_compiler.run_kernel_as(
        pool_kernels._select_kernel, "compiled", y.view(windows), x.view(windows)
    )
    for got, expected in zip(compiled, eager, strict=True):
        torch.testing.assert_close(got, expected, rtol=0, atol=0)
    grad, index = eager[0], eager[2]
    torch.testing.assert_close(
        kernel_compiler.run_kernel_as(pool_kernels._unpool_kernel, "compiled", grad, index),
        pool_kernels._unpool_kernel(grad, index),
    )


def test_failed_build_falls_back_under_auto_and_raises_under_compiled(monkeypatch, caplog):
    def no_compiler():
        raise RuntimeError("Ninja is required to load C++ extensions")

    monkeypatch.setattr(pool_kernels, "EXTENSION", ExtensionBuilder(no_compiler))
    monkeypatch.setattr(kernel_compiler, "_IMPLEMENTATIONS_RUN", set())
    x = random_input((2, 3, 4, 4))
    params = fourier_parameters(False)
    with caplog.at_level(logging.WARNING, logger="trainact.nn.kernel_compiler"):
        _assert_same(*_fourier_pair("auto"), (x, *params))
        _assert_same(*_fourier_pair("auto"), (x, *params))
    warnings = [r for r in caplog.records if "C++ max-pool" in r.getMessage()]
    assert len(warnings) == 1  # once per process
    report = kernel_compiler.kernel_report()
    assert report["pool_extension_failure"] == "RuntimeError: Ninja is required to load C++ extensions"
    assert "cpp" not in report["implementations"]
    with pytest.raises(RuntimeError, match="could not be built"):
        fourier_max_pool_fast(x, *params, impl="compiled")


def test_cpp_is_recorded(monkeypatch):
    monkeypatch.setattr(kernel_compiler, "_IMPLEMENTATIONS_RUN", set())
    LinearCombination().max_pool(torch.randn(2, 3, 4, 4))
    assert kernel_compiler.kernel_report()["implementations"] == ["compiled", "cpp"]


@pytest.mark.parametrize("activation", ["fourier", "lc"])
@pytest.mark.parametrize("per_channel", [False, True])
def test_model_fused_stages_equal_the_unfused_network(activation, per_channel):
    """The conv stages fuse activation and max-pool; the state dict keys and the outputs and
    gradients are those of running the three modules in turn (a forward hook turns fusion off)."""
    cfg = {"fourier": {"per_channel": per_channel}, "lc": {"per_channel": per_channel, "init": "uniform"}}
    torch.manual_seed(0)
    model = build_model("small", activation, cfg)
    assert list(model.state_dict()) == list(build_model("small", activation, cfg).state_dict())
    assert "stages.0.1.weights" in model.state_dict() or "stages.0.1.A" in model.state_dict()
    images = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(7))
    kernel_compiler.reset_kernel_report()
    fused = model(images)
    fused_grads = torch.autograd.grad(fused.square().sum(), list(model.parameters()))
    assert "cpp" in kernel_compiler.kernel_report()["implementations"]
    handles = [stage[1].register_forward_hook(lambda *args: None) for stage in model.stages]
    unfused = model(images)
    unfused_grads = torch.autograd.grad(unfused.square().sum(), list(model.parameters()))
    for handle in handles:
        handle.remove()
    torch.testing.assert_close(fused, unfused)
    for fused_grad, unfused_grad in zip(fused_grads, unfused_grads, strict=True):
        torch.testing.assert_close(fused_grad, unfused_grad, rtol=1e-4, atol=1e-5)


def test_fused_path_is_the_unfused_kernels_in_float64():
    # the fused op against the (unfused) fast kernels themselves, per channel
    x = random_input((3, 3, 6, 4))
    params = fourier_parameters(True)
    _assert_same(
        lambda x, *p: fourier_max_pool_fast(x, *p),
        lambda x, *p: F.max_pool2d(fourier_fast(x, *p), 2),
        (x, *params),
    )
    weights = lc_weights(True)
    _assert_same(
        lambda x, w: linear_combination_max_pool_fast(x, w, CANDIDATES, 1e-2),
        lambda x, w: F.max_pool2d(linear_combination_fast(x, w, CANDIDATES, 1e-2), 2),
        (x, weights),
    )
