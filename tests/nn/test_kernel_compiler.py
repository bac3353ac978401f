"""Compilation of the kernels (trainact.nn.kernel_compiler): "auto" falls back to eager on compiler
failures only, the record of what ran, and the real compiled path."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from activation_inputs import CANDIDATES, grads_of
from torch import nn

from trainact.nn import kernel_compiler, kernels
from trainact.nn.factory import make_activation
from trainact.nn.fourier import Fourier
from trainact.nn.kernels import fourier_fast, linear_combination_fast
from trainact.nn.linear_combination import LinearCombination
from trainact.nn.reference import fourier_reference


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
    monkeypatch.setattr(kernel_compiler, "_IMPLEMENTATIONS_RUN", set())

    def install(compile_fn=torch.compile):
        fresh = kernel_compiler._KernelCompiler(compile_fn)
        monkeypatch.setattr(kernel_compiler, "_COMPILER", fresh)
        return fresh

    install()
    return install


def _no_cxx():
    return torch._inductor.exc.InductorError(torch._inductor.exc.InvalidCxxCompiler(), None)


def _compiler_failures():
    import torch._dynamo.exc
    import torch._inductor.exc

    return {
        "missing-cxx": _no_cxx,
        "backend": lambda: torch._dynamo.exc.BackendCompilerFailed(
            torch.compile, RuntimeError("no compiler here"), None
        ),
        "unsupported": lambda: torch._dynamo.exc.Unsupported("no compiler here"),
        "cpp-compile": lambda: torch._inductor.exc.CppCompileError(["g++"], "no compiler here"),
    }


def _fallback_warnings(caplog):
    return [r for r in caplog.records if "torch.compile of the activation kernels failed" in r.getMessage()]


@pytest.mark.parametrize("failure", list(_compiler_failures()))
def test_auto_impl_falls_back_to_eager_once_when_compilation_fails(compiler, caplog, failure):
    make_error = _compiler_failures()[failure]
    fake = FakeCompile(always=make_error)
    state = compiler(fake)
    x = torch.linspace(-2, 2, 9, requires_grad=True)
    with caplog.at_level(logging.WARNING, logger="trainact.nn.kernel_compiler"):
        for module in (Fourier(), LinearCombination()):
            out = module(x)
            (grad_x,) = torch.autograd.grad(out.sum(), x)
            module.impl = "reference"
            ref = module(x)
            torch.testing.assert_close(out, ref)
            torch.testing.assert_close(grad_x, torch.autograd.grad(ref.sum(), x)[0])
    expected = kernel_compiler._describe(make_error())
    warnings = _fallback_warnings(caplog)
    assert len(warnings) == 1 and expected in warnings[0].getMessage()
    assert "\n" not in warnings[0].getMessage()  # one log line
    assert state.failed and state.failure == expected
    assert fake.calls == 1  # after the failure, no compiled call is even tried
    assert kernel_compiler.kernel_report() == {
        "implementations": ["eager", "reference"],
        "compile_failure": expected,
        "pool_extension_failure": None,
    }
    # "compiled" never falls back
    with pytest.raises(type(make_error()), match="no compiler here|C\\+\\+ compiler"):
        Fourier(impl="compiled")(x)


def test_missing_cxx_failure_is_described_with_the_inner_error(compiler):
    compiler(FakeCompile(always=_no_cxx))
    LinearCombination()(torch.linspace(-2, 2, 9))
    failure = kernel_compiler.kernel_report()["compile_failure"]
    assert failure.startswith("InductorError: InvalidCxxCompiler: No working C++ compiler")


def test_compile_fn_that_raises_itself_counts_as_a_compiler_failure(compiler, caplog):
    def unsupported_platform(function, **options):
        raise RuntimeError("torch.compile is not supported on this Python")

    state = compiler(unsupported_platform)
    x = torch.linspace(-2, 2, 9)
    with caplog.at_level(logging.WARNING, logger="trainact.nn.kernel_compiler"):
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
        lambda: RuntimeError("The size of tensor a (3) must match the size of tensor b (4)"),
        # dynamo's wrapper of an error of the traced code itself (a shape error while tracing)
        lambda: torch._dynamo.exc.TorchRuntimeError("RuntimeError when making fake tensor call"),
        # out of memory while compiling (autotuning) is not a reason to run eagerly for good
        lambda: torch._dynamo.exc.BackendCompilerFailed(torch.compile, _oom(), None),
        lambda: torch._inductor.exc.InductorError(_oom(), None),
    ],
    ids=["oom", "runtime-error", "torch-runtime-error", "backend-oom", "inductor-oom"],
)
def test_auto_impl_propagates_other_errors_and_keeps_compiling(compiler, caplog, make_error):
    import torch._dynamo.exc  # noqa: F401  (the lambdas above)
    import torch._inductor.exc  # noqa: F401

    error = make_error()
    fake = FakeCompile(error)
    state = compiler(fake)
    module = LinearCombination()
    x = torch.linspace(-2, 2, 9, requires_grad=True)
    with caplog.at_level(logging.WARNING, logger="trainact.nn.kernel_compiler"):
        with pytest.raises(type(error)) as raised:
            module(x)
        assert raised.value is error  # unchanged
        assert not state.failed and state.failure is None
        assert kernel_compiler.kernel_report() == {
            "implementations": [],
            "compile_failure": None,
            "pool_extension_failure": None,
        }
        out = module(x)  # the next call tries the compiled path again, and it runs
        out.sum().backward()
    assert fake.calls == 3  # failed forward, forward, backward
    assert not state.failed and not _fallback_warnings(caplog)
    assert kernel_compiler.kernel_report() == {
        "implementations": ["compiled"],
        "compile_failure": None,
        "pool_extension_failure": None,
    }
    module.impl = "reference"
    torch.testing.assert_close(out, module(x))


def test_is_compiler_failure_classes():
    import torch._dynamo.exc
    import torch._inductor.exc

    assert kernel_compiler._is_compiler_failure(_no_cxx())
    assert kernel_compiler._is_compiler_failure(torch._inductor.exc.InvalidCxxCompiler())
    assert kernel_compiler._is_compiler_failure(torch._dynamo.exc.Unsupported("x"))
    assert not kernel_compiler._is_compiler_failure(_oom())
    assert not kernel_compiler._is_compiler_failure(RuntimeError("x"))
    assert not kernel_compiler._is_compiler_failure(torch._dynamo.exc.TorchRuntimeError("x"))
    types = kernel_compiler._compiler_failure_types()
    assert torch._dynamo.exc.BackendCompilerFailed in types
    assert torch._inductor.exc.CppCompileError in types


def test_kernel_report_of_each_implementation(compiler):
    x = torch.linspace(-2, 2, 9, requires_grad=True)
    report = kernel_compiler.kernel_report
    assert report() == {"implementations": [], "compile_failure": None, "pool_extension_failure": None}
    # a ReLU network never calls the kernels
    relu = nn.Sequential(nn.Linear(9, 4), make_activation("relu", 4, {}))
    relu(x).sum().backward()
    assert report() == {"implementations": [], "compile_failure": None, "pool_extension_failure": None}
    # curves (plots) use the reference formula but are no activation outputs of the network
    LinearCombination(impl="reference").curve(x)
    assert report()["implementations"] == []
    LinearCombination(impl="reference")(x)
    assert report() == {
        "implementations": ["reference"],
        "compile_failure": None,
        "pool_extension_failure": None,
    }
    kernel_compiler.reset_kernel_report()
    Fourier(impl="eager")(x).sum().backward()
    assert report() == {"implementations": ["eager"], "compile_failure": None, "pool_extension_failure": None}
    kernel_compiler.reset_kernel_report()
    compiler(FakeCompile())  # "compiles" to the kernel itself
    for impl in ("auto", "compiled"):
        LinearCombination(impl=impl)(x).sum().backward()
        assert report() == {
            "implementations": ["compiled"],
            "compile_failure": None,
            "pool_extension_failure": None,
        }
    assert json.loads(json.dumps(report())) == report()  # fit for summary.json


def test_kernel_report_after_a_fallback_between_forward_and_backward(compiler):
    """The forward kernel compiles, the backward kernel does not: both paths ran."""
    fake = FakeCompile(always=_no_cxx, fail_kernels={kernels._lc_backward_kernel})
    compiler(fake)
    x = torch.linspace(-2, 2, 9, requires_grad=True)
    LinearCombination()(x).sum().backward()
    report = kernel_compiler.kernel_report()
    assert report["implementations"] == ["compiled", "eager"]
    assert report["compile_failure"].startswith("InductorError: InvalidCxxCompiler")
    # the reset forgets what ran, not the failure, which still decides what "auto" runs
    kernel_compiler.reset_kernel_report()
    LinearCombination()(x).sum().backward()
    assert kernel_compiler.kernel_report() == {
        "implementations": ["eager"],
        "compile_failure": report["compile_failure"],
        "pool_extension_failure": None,
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
from trainact.nn.kernel_compiler import kernel_report
from trainact.nn.linear_combination import LinearCombination
x = torch.linspace(-2, 2, 9, requires_grad=True)
LinearCombination()(x).sum().backward()
print(json.dumps(kernel_report()))
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


def test_compiled_path_on_a_tiny_input_matches_the_reference(compiler):
    """The real torch.compile kernels (not the FakeCompile stand-in) on six float32 values: the
    output and the gradients of x and of every parameter agree with the reference formula.
    In the fast subset on purpose: the compiled kernels are what a training run uses."""
    x = torch.tensor([-2.5, -1.0, -0.1, 0.0, 0.7, 3.0]).requires_grad_()
    A = torch.tensor([0.2], requires_grad=True)
    omega = torch.tensor([0.8], requires_grad=True)
    a = torch.tensor([0.5, -0.3], requires_grad=True)
    b = torch.tensor([0.4, 0.1], requires_grad=True)
    out, grads = grads_of(lambda *t: fourier_fast(*t, impl="compiled"), (x, A, omega, a, b))
    ref_out, ref_grads = grads_of(fourier_reference, (x, A, omega, a, b))
    torch.testing.assert_close(out, ref_out, atol=1e-6, rtol=1e-5)
    for grad, ref_grad in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(grad, ref_grad, atol=1e-5, rtol=1e-5)
    assert kernel_compiler.kernel_report()["implementations"] == ["compiled"]


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
