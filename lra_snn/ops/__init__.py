"""The computations the neurons' parallel forms reduce to (docs/kernels.md, "What needs a kernel").

One folder per op, each with the same contract:

- ``naive.py``: the definition as a plain time loop, what the other paths are tested against;
- ``torch.py``: the parallel PyTorch path;
- ``triton.py``: the Triton kernels and their autograd (imports triton; loaded only when chosen);
- ``__init__.py``: exactly one public function, ``<op>(..., backend=None)``, which returns the
  same outputs on every backend and asks ``lra_snn.ops.dispatch.select_backend`` once per call
  (``backend``: None automatic, "torch" or "triton").

The ops:

- ``linear_scan(a, b, h0=None, backend=None)``: ``h_t = a_t h_{t-1} + b_t``, real;
- ``leaky_integrate(x, decay, chunk=32, backend=None)``: the same with one constant decay;
- ``complex_scan(a, b, h0=None, backend=None)``: ``z_t = a_t z_{t-1} + b_t``, complex;
- ``prf_membrane(x, log_delta, theta, tau, backend=None)``: the PRF neuron's membrane ``Re z``;
- ``prf_spikes(x, log_delta, theta, tau, v_th, surrogate="atan", backend=None)``: the PRF neuron's spikes
  ``H(Re z - V_th)`` with the surrogate gradient (one fused loop on the CPU);
- ``threshold_scan(excess, v_th, decay, surrogate="atan", detach_reset=True, backend=None)``: the
  soft-reset offsets and spikes, with the coupled reset's gradient when ``detach_reset=False``;
- ``lif(x, beta, v_th, surrogate="atan", detach_reset=True, backend=None)``: the whole
  decoupled-reset LIF forward, spikes and spike counts;
- ``dsn(logits, x, tau, n_levels, binary, backend=None)``: the DSN membrane and spikes;
- ``refractory_iteration(excess, spikes, v_th, rho, beta, gamma, backend=None)``: one
  boundary-compression iteration of the refractory LIF;
- ``hard_reset_scan(x, v_th, decay, surrogate="triangle", backend=None)``: the hard-reset LIF of
  SpikingSSMs, spikes and potentials, its gradient cut at spikes (the time loop's detached reset);
- ``banded_product(x, weight, bias, backend=None)``: the sliding PSN's ``H_t = sum_{i<k} w_i x_{t-k+1+i} + b``.

Shared pieces: ``surrogate`` (the spike functions with surrogate gradients, for PyTorch, and in
``surrogate/triton.py`` the same surrogates as Triton device functions), ``triton_common`` (the
kernels' device functions and launch helpers), ``tiles`` (tile shapes), ``compiled_rows`` (what the
compiled CPU loops share: their split into row and channel-block tasks, numba helpers, launch
helpers). Nothing here imports ``lra_snn.neurons``, and nothing is imported in this file, so importing
one op loads only what it needs.
"""
