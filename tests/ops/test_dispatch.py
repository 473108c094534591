"""Backend choice (lra_snn/ops/dispatch.py, asked once by each op call): Triton only where it can
run, PyTorch otherwise, forced backends honoured or refused with the reason, logged once."""

from __future__ import annotations

import logging

import pytest
import torch

from lra_snn.ops import dispatch
from lra_snn.ops.complex_scan import complex_scan
from lra_snn.ops.dispatch import TritonUnavailable
from lra_snn.ops.dsn import dsn
from lra_snn.ops.lif import lif
from lra_snn.ops.linear_scan import linear_scan
from lra_snn.ops.refractory_iteration import refractory_iteration


@pytest.fixture
def no_interpreter(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")


def test_cpu_tensors_without_interpreter_are_explained(no_interpreter):
    b = torch.randn(2, 5, 3)
    reason = dispatch.explain("linear_scan", [torch.rand(3), b])
    assert reason is not None and "on cpu" in reason and "TRITON_INTERPRET=1" in reason
    with pytest.raises(ValueError, match="backend='triton' was forced but cannot run: linear_scan: tensors are on cpu"):
        linear_scan(torch.rand(3), b, backend="triton")


def test_interpreter_makes_cpu_tensors_eligible_but_never_automatic(monkeypatch, caplog, chosen_backends):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    x = torch.randn(2, 5, 3)
    assert dispatch.explain("lif", [x]) is None
    dispatch.log_once.cache_clear()
    with caplog.at_level(logging.INFO, logger="lra_snn.ops.dispatch"):
        lif(x.half(), 0.5, 1.0)  # no compiled loop for float16: PyTorch
    assert "CPU tensors use PyTorch unless backend='triton' is forced" in caplog.text
    lif(x, 0.5, 1.0)  # float32: the compiled loop, still not the interpreter
    lif(x, 0.5, 1.0, backend="triton")
    assert chosen_backends == [("lif", "torch"), ("lif", "compiled"), ("lif", "triton")]  # one choice per op call


def forced_reason(op, *args) -> str:
    """The reason a forced Triton call of ``op`` is refused."""
    with pytest.raises(TritonUnavailable) as refused:
        op(*args, backend="triton")
    return str(refused.value)


def test_shape_dtype_and_option_reasons(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    b = torch.randn(2, 5, 3)
    assert "per-channel (D,) or per-step" in forced_reason(linear_scan, torch.rand(2, 1, 3), b)
    assert "dtype torch.int64" in forced_reason(linear_scan, torch.ones(3, dtype=torch.long), b.long())
    assert "(B, L, D)" in forced_reason(linear_scan, torch.rand(2, 5), torch.randn(2, 5))
    assert "h0 must have shape (2, 3)" in forced_reason(linear_scan, torch.rand(3), b, torch.zeros(3))
    assert "complex64/complex128" in forced_reason(complex_scan, torch.rand(3), b)
    complex_scan(torch.rand(3, dtype=torch.complex64), b.to(torch.complex64), backend="triton")  # runs
    with pytest.raises(ValueError, match="one shape"):
        dsn(b, b[:, :2], 0.25, 4, False, backend="triton")
    spikes = (b > 0).float()
    assert "v_th and rho must have shape (3,)" in forced_reason(
        refractory_iteration, b, spikes, torch.ones(1), torch.ones(3), 0.5, 0.3
    )
    refractory_iteration(b, spikes, torch.ones(3), torch.ones(3), 0.5, 0.3, backend="triton")  # runs
    # the coupled reset (gradient through the reset) runs on Triton too, as the kernels it composes
    lif(b, 0.5, 1.0, detach_reset=False, backend="triton")


def test_missing_triton_is_explained(monkeypatch):
    monkeypatch.setattr(dispatch, "triton_import_error", lambda: "triton is not importable (test)")
    assert forced_reason(dsn, torch.randn(1, 2, 3), torch.randn(1, 2, 3), 0.25, 4, False).endswith(
        "triton is not importable (test)"
    )


def test_unknown_backend_and_forced_torch():
    b = torch.randn(2, 5, 3)
    with pytest.raises(ValueError, match="unknown backend 'cuda'"):
        linear_scan(torch.rand(3), b, backend="cuda")
    assert dispatch.select_backend("linear_scan", [b], "torch", unsupported="anything") == "torch"


def test_reason_logged_once(no_interpreter, caplog):
    dispatch.log_once.cache_clear()
    b = torch.randn(2, 5, 3)
    with caplog.at_level(logging.INFO, logger="lra_snn.ops.dispatch"):
        for _ in range(3):
            linear_scan(torch.rand(3).half(), b.half())  # float16: neither Triton nor the compiled loop
    lines = [r for r in caplog.records if "linear_scan: tensors are on cpu" in r.getMessage()]
    assert len(lines) == 1


def test_the_compiled_loop_is_chosen_only_where_it_can_run(no_interpreter, monkeypatch):
    x = torch.randn(2, 5, 3)
    choose = dispatch.select_backend
    assert choose("op", [x]) == "torch"  # an op without a compiled path
    assert choose("op", [x], compiled_unsupported=None) == "compiled"
    assert choose("op", [x.half()], compiled_unsupported=None) == "torch"
    assert choose("op", [x], "torch", compiled_unsupported=None) == "torch"
    with pytest.raises(dispatch.CompiledUnavailable, match="op: the op has no compiled CPU path"):
        choose("op", [x], "compiled")
    with pytest.raises(dispatch.CompiledUnavailable, match=r"op: dtype torch.float16 is not supported"):
        choose("op", [x.half()], "compiled", compiled_unsupported=None)
    with pytest.raises(dispatch.CompiledUnavailable, match="op: gradient through v_th"):
        choose("op", [x], "compiled", compiled_unsupported="gradient through v_th")
    monkeypatch.setattr(dispatch, "numba_import_error", lambda: "numba is not importable (test)")
    assert choose("op", [x], compiled_unsupported=None) == "torch"
    with pytest.raises(dispatch.CompiledUnavailable, match="numba is not importable"):
        choose("op", [x], "compiled", compiled_unsupported=None)
