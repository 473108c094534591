"""Neuron primitives, one package per primitive, each with a PyTorch reference, Triton kernels
and a dispatch (``lra_snn.ops.dispatch``): ``linear_scan`` (real first-order scan),
``complex_scan`` (PRF), ``lif`` (fused decoupled-reset LIF), ``dsn`` (fused DSN) and
``refractory`` (one boundary-compression iteration). See docs: kernels.md.

Nothing is imported here, so importing one primitive never pulls in the neuron modules that
import the others.
"""
