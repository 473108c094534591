"""The op contract of lra_snn/ops (its package docstring): one folder per op with naive.py, torch.py
and triton.py, and compiled.py where the op has a compiled CPU loop; one public function
``<op>(..., backend=None)`` that asks the dispatch once per call and returns the same outputs and
gradients on every backend as the time loop (Triton under the interpreter on the CPU; odd lengths,
partial chunks and channel tiles); no import of lra_snn.neurons."""

from __future__ import annotations

import ast
import importlib
import inspect
import math
from pathlib import Path

import pytest
import torch

import lra_snn.ops

OPS = [
    "banded_product",
    "complex_scan",
    "dsn",
    "hard_reset_scan",
    "leaky_integrate",
    "lif",
    "linear_scan",
    "prf_membrane",
    "prf_spikes",
    "refractory_iteration",
    "threshold_scan",
]
OPS_DIR = Path(lra_snn.ops.__file__).parent
PATHS = ("naive", "torch", "triton")


def paths_of(op: str) -> tuple[str, ...]:
    """The op's paths: the three every op has, and "compiled" where it has a compiled CPU loop."""
    return (*PATHS, "compiled") if (OPS_DIR / op / "compiled.py").exists() else PATHS


def test_the_op_folders_are_the_ops_with_the_three_paths():
    assert sorted(path.parent.name for path in OPS_DIR.glob("*/naive.py")) == OPS
    for op in OPS:
        assert {f"{name}.py" for name in ("__init__", *PATHS)} <= {p.name for p in (OPS_DIR / op).glob("*.py")}


@pytest.mark.parametrize("op", OPS)
def test_each_op_exports_one_function_with_a_backend_parameter(op):
    module = importlib.import_module(f"lra_snn.ops.{op}")
    assert module.__all__ == [op]
    public = [
        name
        for name, value in vars(module).items()
        if inspect.isfunction(value) and value.__module__ == module.__name__ and not name.startswith("_")
    ]
    assert public == [op]
    parameters = inspect.signature(getattr(module, op)).parameters
    assert list(parameters)[-1] == "backend" and parameters["backend"].default is None
    required = {name for name, p in parameters.items() if p.default is inspect.Parameter.empty}
    for path in paths_of(op):  # each path computes the op from the same arguments (the backend aside)
        path_parameters = inspect.signature(
            getattr(importlib.import_module(f"{module.__name__}.{path}"), f"{op}_{path}")
        ).parameters
        assert required <= set(path_parameters) <= set(parameters) - {"backend"}, (op, path)


def test_the_ops_import_nothing_from_the_neurons():
    for source in OPS_DIR.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            assert not any(name.startswith("lra_snn.neurons") for name in names), f"{source}: imports {names}"


def _random(shape, seed, low=None, high=None, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    if low is None:
        return torch.randn(shape, generator=g, dtype=dtype)
    return low + (high - low) * torch.rand(shape, generator=g, dtype=dtype)


def _complex(shape, seed):
    return torch.polar(_random(shape, seed, 0.3, 0.9), _random(shape, seed + 1))


# case -> (op, inputs for (B, L, D), differentiable input positions, the other arguments)
B, D = 2, 5
CASES = {
    "linear_scan": (
        "linear_scan",
        lambda n: [_random((B, n, D), 1, 0.05, 0.95), _random((B, n, D), 2), _random((B, D), 3)],
        (0, 1, 2),
        (),
    ),
    "linear_scan_per_channel": (
        "linear_scan",
        lambda n: [_random((D,), 1, 0.05, 0.95), _random((B, n, D), 2)],
        (0, 1),
        (),
    ),
    "leaky_integrate": ("leaky_integrate", lambda n: [_random((B, n, D), 4)], (0,), (0.7,)),
    "complex_scan": (
        "complex_scan",
        lambda n: [
            _complex((D,), 5),
            torch.randn(B, n, D, dtype=torch.complex128),
            torch.randn(B, D, dtype=torch.complex128),
        ],
        (0, 1, 2),
        (),
    ),
    "prf_membrane": (
        "prf_membrane",
        lambda n: [_random((B, n, D), 6), _random((D,), 7, math.log(0.05), math.log(0.5)), _random((D,), 8, 0.0, 1.0)],
        (0, 1, 2),
        (2.0,),
    ),
    "prf_spikes": (
        "prf_spikes",
        lambda n: [_random((B, n, D), 6), _random((D,), 7, math.log(0.05), math.log(0.5)), _random((D,), 8, 0.0, 1.0)],
        (0, 1, 2),
        (2.0, 0.1, "triangle"),
    ),
    "threshold_scan": (
        "threshold_scan",
        lambda n: [_random((B, n, D), 9) + 0.3, _random((D,), 10, 0.5, 1.5)],
        (0,),
        (0.6, "triangle"),
    ),
    "threshold_scan_coupled_reset": (
        "threshold_scan",
        lambda n: [_random((B, n, D), 9) + 0.3],
        (0,),
        (1.0, 0.6, "atan", False),
    ),
    "hard_reset_scan": ("hard_reset_scan", lambda n: [0.5 + _random((B, n, D), 18)], (0,), (1.0, 0.5, "triangle")),
    "lif": ("lif", lambda n: [0.4 + 0.8 * _random((B, n, D), 11)], (0,), (0.5, 1.0, "rect")),
    "lif_coupled_reset": ("lif", lambda n: [0.4 + 0.8 * _random((B, n, D), 11)], (0,), (0.5, 1.0, "atan", False)),
    "dsn": ("dsn", lambda n: [2 * _random((B, n, D), 12), 3 * _random((B, n, D), 13)], (0, 1), (0.25, 4, False)),
    "dsn_binary": ("dsn", lambda n: [2 * _random((B, n, D), 12), _random((B, n, D), 13)], (0, 1), (0.25, 1, True)),
    "banded_product": (
        "banded_product",
        lambda n: [_random((B, n, D), 19), _random((4,), 20), _random((), 21)],
        (0, 1, 2),
        (),
    ),
    "banded_product_window_longer_than_a_block": (
        "banded_product",
        lambda n: [_random((B, n, D), 22), _random((40,), 23), _random((), 24)],
        (0, 1, 2),
        (),
    ),
    "refractory_iteration": (
        "refractory_iteration",
        lambda n: [
            _random((B, n, D), 14) - 0.2,
            (_random((B, n, D), 15, 0.0, 1.0) < 0.4).double(),
            _random((D,), 16, 0.5, 1.5),
            _random((D,), 17, 0.2, 1.0),
        ],
        (),
        (0.5, 0.3),
    ),
}


def test_every_op_has_an_agreement_case():
    assert {op for op, *_ in CASES.values()} == set(OPS)


def _run(fn, inputs, differentiable, rest, dy_seed):
    """Outputs of ``fn`` and the gradients of its first output with respect to the differentiable inputs."""
    leaves = [t.clone().requires_grad_(i in differentiable) for i, t in enumerate(inputs)]
    outputs = fn(*leaves, *rest)
    outputs = list(outputs) if isinstance(outputs, tuple) else [outputs]
    grads = []
    if differentiable:
        g = torch.Generator().manual_seed(dy_seed)
        dy = torch.randn(outputs[0].shape, generator=g, dtype=torch.float64).to(outputs[0].dtype)
        grads = torch.autograd.grad(outputs[0], [leaves[i] for i in differentiable], dy)
    return [t.detach() for t in outputs], list(grads)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("length", [1, 9, 17])  # 17: two interpreter chunks, the second partial
def test_outputs_agree_across_naive_torch_and_triton(case, length, device, chosen_backends):
    op, make_inputs, differentiable, rest = CASES[case]
    inputs = [t.to(device) for t in make_inputs(length)]
    public = getattr(importlib.import_module(f"lra_snn.ops.{op}"), op)
    naive = getattr(importlib.import_module(f"lra_snn.ops.{op}.naive"), f"{op}_naive")
    expected_outputs, expected_grads = _run(naive, inputs, differentiable, rest, dy_seed=length)
    compiled = ("compiled",) if "compiled" in paths_of(op) and device.type == "cpu" else ()
    for backend in ("torch", "triton", *compiled):
        chosen_backends.clear()
        outputs, grads = _run(
            lambda *args, b=backend: public(*args, backend=b), inputs, differentiable, rest, dy_seed=length
        )
        assert chosen_backends == [(op, backend)], "one dispatch per op call, of the op's own name"
        assert len(outputs) == len(expected_outputs) and len(grads) == len(expected_grads)
        for name, got, expected in [
            *zip(("output",) * len(outputs), outputs, expected_outputs),
            *zip(("gradient",) * len(grads), grads, expected_grads),
        ]:
            assert got.dtype == expected.dtype, f"{backend} {name}: dtype {got.dtype}, naive {expected.dtype}"
            torch.testing.assert_close(
                got, expected, rtol=1e-10, atol=1e-10, msg=lambda m, b=backend, n=name: f"{b} {n}: {m}"
            )
