"""The neurons through the Triton backend (interpreter on CPU) give the spikes and gradients of
their PyTorch backend (lra_snn/neurons with ``backend="triton"`` vs ``"torch"``), small shapes."""

from __future__ import annotations

import pytest
import torch

from lra_snn.neurons import build_neuron

CASES = {
    "lif": {},
    "lif_triangle": {"surrogate": "triangle"},
    "lif_coupled_reset": {"detach_reset": False},
    "dsn": {},
    "dsn_binary": {"binary": True},
    "prf": {"theta_max": 1.0, "delta_min": 0.05, "delta_max": 0.5},
    "prf_reset": {"theta_max": 1.0, "delta_min": 0.05, "delta_max": 0.5, "reset": True},
    "refractory_lif": {},
}
REGISTRY_NAME = {"lif_triangle": "lif", "lif_coupled_reset": "lif", "dsn_binary": "dsn", "prf_reset": "prf"}


def neuron_pair(case: str, channels: int, device: torch.device):
    """The same neuron (same seed, same parameters) with the torch and the triton backend."""
    name = REGISTRY_NAME.get(case, case)
    pair = []
    for backend in ("torch", "triton"):
        torch.manual_seed(0)
        pair.append(build_neuron(name, channels, backend=backend, **CASES[case]).to(device, torch.float64))
    return pair


@pytest.mark.parametrize("case", list(CASES))
def test_triton_backend_matches_torch_backend(case, device):
    g = torch.Generator().manual_seed(1)
    x = (0.5 + 1.5 * torch.randn(2, 23, 6, generator=g, dtype=torch.float64)).to(device)
    dy = torch.randn(2, 23, 6, generator=g, dtype=torch.float64).to(device)
    results = []
    for neuron in neuron_pair(case, 6, device):
        xi = x.clone().requires_grad_()
        spikes = neuron(xi)
        grads = torch.autograd.grad(spikes, [xi, *neuron.parameters()], dy)
        results.append((spikes.detach(), grads, float(neuron.firing_rate)))
    (torch_spikes, torch_grads, torch_rate), (triton_spikes, triton_grads, triton_rate) = results
    assert 0 < torch_spikes.mean() < torch_spikes.max(), "inputs must make the neuron fire on some steps only"
    torch.testing.assert_close(triton_spikes, torch_spikes, rtol=0, atol=0)
    assert triton_rate == pytest.approx(torch_rate, rel=1e-12)
    for got, expected in zip(triton_grads, torch_grads):
        torch.testing.assert_close(got, expected, rtol=1e-8, atol=1e-10)
