"""Parallel spiking neurons: PSN, masked PSN and sliding PSN (docs/neurons.md section 4).

Fang et al., "Parallel Spiking Neurons with High Efficiency and Ability to Learn Long-term
Dependencies" (NeurIPS 2023, arXiv 2304.12760), as defined in SpikingJelly's ``PSN``,
``MaskedPSN`` and ``SlidingPSN``: without a reset the hidden state is linear in the inputs,
``H = W X + b`` over the time axis, and the spikes are ``S = H(H)`` with the ATan surrogate.
``W`` and ``b`` are shared by all channels of the layer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar, NamedTuple, NoReturn

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lra_snn.config.rules import SIZE, Rule
from lra_snn.neurons.base import Neuron
from lra_snn.ops.banded_product import banded_product
from lra_snn.ops.banded_product.torch import BAND_BLOCK, block_banded_product
from lra_snn.ops.surrogate import spike
from lra_snn.optim.groups import tag

_INITIAL_BIAS = -1.0  # b = -1: a spike when W x reaches the threshold 1
_BAND_MIN_BLOCKS = 8  # the masked PSN's banded product from this many blocks on (below, the dense one is faster)


class _TimeMajorMix(torch.autograd.Function):
    """``H = W X + b`` over the time axis of (B, T, D) inputs (PSN paper, the hidden state ``H = W X``
    with X of shape (T, N), arXiv 2304.12760), as three single matrix products over N = B * D columns.

    Forward: ``x`` is laid out time-major once, (T, B * D) (one copy, kept for the backward), and
    ``H = b + W X`` is one product; the result is returned as a (B, T, D) view of that time-major
    memory. Backward: the incoming gradient is read time-major (no copy when it has the output's
    layout, as elementwise backwards give it), ``dW = dH X^T`` and ``dX = W^T dH`` are one product
    each, ``db`` the row sums of ``dH``. Used when T > 4 D (``PSN.potential``): the layout copy is small
    beside the T x T product, and one product over B * D columns reads ``W`` once.
    """

    @staticmethod
    def forward(ctx, weight: Tensor, bias: Tensor, x: Tensor) -> Tensor:
        batch, length, channels = x.shape
        columns = x.transpose(0, 1).reshape(length, batch * channels)
        ctx.save_for_backward(weight, columns)
        ctx.shape = x.shape
        return torch.addmm(bias.unsqueeze(1), weight, columns).view(length, batch, channels).transpose(0, 1)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        weight, columns = ctx.saved_tensors
        batch, length, channels = ctx.shape
        grad_columns = grad.transpose(0, 1).reshape(length, batch * channels)
        grad_weight = torch.mm(grad_columns, columns.t()) if ctx.needs_input_grad[0] else None
        grad_bias = grad_columns.sum(1) if ctx.needs_input_grad[1] else None
        grad_x = None
        if ctx.needs_input_grad[2]:
            grad_x = torch.mm(weight.t(), grad_columns).view(length, batch, channels).transpose(0, 1)
        return grad_weight, grad_bias, grad_x


class _BatchMajorMix(torch.autograd.Function):
    """``H = W X + b`` over the time axis of (B, T, D) inputs in their own batch-major layout (PSN paper,
    ``H = W X``, arXiv 2304.12760), for T <= 4 D (``PSN.potential``).

    Forward: one batched product ``H[b] = W X[b] + b`` (``baddbmm``, ``W`` broadcast with stride 0),
    neither input nor output re-laid out. Backward: ``dX[b] = W^T dH[b]`` (one batched product),
    ``dW = sum_b dH[b] X[b]^T`` accumulated in place batch by batch (no copy; ``W`` is at most 4D x 4D),
    ``db`` the sum of ``dH`` over B and D.
    """

    @staticmethod
    def forward(ctx, weight: Tensor, bias: Tensor, x: Tensor) -> Tensor:
        ctx.save_for_backward(weight, x)
        return torch.baddbmm(bias.unsqueeze(1), _broadcast(weight, x.shape[0]), x)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        weight, x = ctx.saved_tensors
        grad_weight = grad_bias = grad_x = None
        if ctx.needs_input_grad[0]:
            grad_weight = torch.mm(grad[0], x[0].t())
            for b in range(1, x.shape[0]):
                grad_weight.addmm_(grad[b], x[b].t())
        if ctx.needs_input_grad[1]:
            grad_bias = grad.sum((0, 2))
        if ctx.needs_input_grad[2]:
            grad_x = torch.bmm(_broadcast(weight.t(), x.shape[0]), grad)
        return grad_weight, grad_bias, grad_x


def _broadcast(matrix: Tensor, batch: int) -> Tensor:
    """``matrix`` as a (batch, rows, cols) stack sharing one copy (stride 0), for batched products."""
    return matrix.expand(batch, *matrix.shape)


class PSN(Neuron):
    """PSN: ``H[:, t] = sum_j W[t, j] x[:, j] + b[t]`` for a fixed length T, ``S = H(H)``.

    Non-causal (every output sees all T inputs), so it has no step form. ``W`` (T x T) is
    initialised Kaiming-uniform with a = sqrt(5) (uniform in +-1/sqrt(T)), ``b`` to -1.
    ``max_T`` caps T because the layer holds T^2 weights.
    """

    causal = False  # every output sees all T inputs (masked PSN: until lambda reaches 1)
    fixed_length = True  # built for exactly T steps
    T: int
    option_rules: ClassVar[Mapping[str, Rule]] = {"T": SIZE, "max_T": SIZE}  # max_T caps T: the layer holds T^2 weights

    def macs_per_step(self) -> int:
        """T: each step's potential is a row of ``W`` (T weights) applied to the inputs."""
        return self.T

    def __init__(self, d_model: int, *, T: int, max_T: int = 4096) -> None:
        super().__init__(d_model)
        name = type(self).__name__
        self.check_options(T=T, max_T=max_T)
        if max_T < T:
            raise ValueError(
                f"{name}: T={T} exceeds the cap max_T={max_T} (the layer would hold T^2 = {T * T:,} "
                f"weights); raise max_T if that is intended, or use sliding_psn, which has no length limit"
            )
        self.T = T
        self.max_T = max_T
        weight = torch.empty(T, T)
        nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
        self.weight = tag(nn.Parameter(weight), "dynamics")
        self.bias = tag(nn.Parameter(torch.full((T,), _INITIAL_BIAS)), "dynamics")

    def effective_weight(self) -> Tensor:
        """The T x T matrix applied over time (the plain weight for the PSN)."""
        return self.weight

    def _check_length(self, x: Tensor) -> None:
        self._check_input(x)
        if x.shape[1] != self.T:
            raise ValueError(
                f"{type(self).__name__}(T={self.T}) expects sequences of length {self.T}, got length "
                f"{x.shape[1]} (input shape {tuple(x.shape)}); build the neuron with T={x.shape[1]} "
                f"or pad/crop the input to {self.T} steps"
            )

    def potential(self, x: Tensor) -> Tensor:
        """Hidden state ``H = W X + b`` for all steps at once, as matrix products over time: batch-major
        (``_BatchMajorMix``) when T <= 4 D, else over a time-major copy (``_TimeMajorMix``).

        Rule, measured on the CPU side by side with SpikingJelly's PSN on time-major input (one thread,
        interleaved repeats, B x D in {8 x 64, 16 x 128, 16 x 256, 32 x 256}, T from 128 to 1024): the
        batch-major products took 0.90-1.04x SpikingJelly's time and the time-major copy 0.97-1.31x
        up to T = 4 D; at T = 8 D (``W`` re-read for each of the B products) the time-major form was
        the faster of the two (1.00-1.02x against 1.01-1.05x)."""
        self._check_length(x)
        mix = _BatchMajorMix if x.shape[1] <= 4 * x.shape[2] else _TimeMajorMix
        return mix.apply(self.effective_weight(), self.bias, x)

    def potential_sequential(self, x: Tensor) -> Tensor:
        """Hidden state step by step: ``H_t = sum_j W[t, j] x_j + b_t`` for t = 0 .. T-1."""
        self._check_length(x)
        weight = self.effective_weight()
        return torch.stack([torch.einsum("j,bjd->bd", weight[t], x) + self.bias[t] for t in range(self.T)], 1)

    def forward(self, x: Tensor) -> Tensor:
        return self._record(spike(self.potential(x), "atan"))

    def forward_sequential(self, x: Tensor) -> Tensor:
        return self._record(spike(self.potential_sequential(x), "atan"))

    def _refuse_streaming(self) -> NoReturn:
        raise RuntimeError(
            "PSN cannot run step by step: its weight matrix is dense, so every output depends on all "
            f"T={self.T} inputs; call forward on the whole sequence, or use masked_psn (once its lambda "
            "is 1) or sliding_psn for streaming inference"
        )

    def init_state(self, batch: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> Any:
        self._refuse_streaming()

    def step(self, x_t: Tensor, state: Any) -> tuple[Tensor, Any]:
        self._refuse_streaming()


class MaskedPSNState(NamedTuple):
    """Step-form state of the masked PSN: the next step's index and the last k-1 inputs (B, k-1, D)."""

    t: int
    window: Tensor


class MaskedPSN(PSN):
    """Masked PSN of order k: the PSN with ``W`` multiplied by ``lambda * M_k + (1 - lambda)``.

    ``M_k[i, j] = 1`` iff ``j <= i <= j + k - 1`` (step i sees inputs i-k+1 .. i). ``lambda_``
    starts at 0 (a plain PSN) and is raised to 1 during training by
    ``lra_snn.training.callbacks.MaskedPSNLambdaSchedule``; once it is 1 the neuron is causal with a
    window of k steps and can stream (state: step index and the last k-1 inputs), up to T steps.
    """

    schedules = ("lambda_",)  # ramped 0 -> 1 by MaskedPSNLambdaSchedule
    option_rules: ClassVar[Mapping[str, Rule]] = {"T": SIZE, "k": SIZE, "max_T": SIZE}
    mask: Tensor  # buffers registered in __init__
    _lambda: Tensor

    def macs_per_step(self) -> int:
        """k once fully masked (lambda = 1: a row's band of k weights, as streaming computes), else T."""
        return self.k if self.lambda_ == 1.0 else self.T

    def __init__(self, d_model: int, *, T: int, k: int, max_T: int = 4096) -> None:
        super().__init__(d_model, T=T, max_T=max_T)
        self.check_options(k=k)
        self.k = k
        rows = torch.arange(T).unsqueeze(1)
        cols = torch.arange(T).unsqueeze(0)
        band = (cols <= rows) & (rows <= cols + k - 1)
        self.register_buffer("mask", band.to(torch.get_default_dtype()), persistent=False)
        self.register_buffer("_lambda", torch.zeros(()))

    @property
    def lambda_(self) -> float:
        """Masking progress: 0 = no mask (plain PSN), 1 = fully masked (causal, order k)."""
        return float(self._lambda)

    @lambda_.setter
    def lambda_(self, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"MaskedPSN.lambda_ must lie in [0, 1], got {value}")
        self._lambda.fill_(value)

    def effective_weight(self) -> Tensor:
        lam = self._lambda.to(self.weight.dtype)
        return self.weight * (lam * self.mask.to(self.weight.dtype) + (1 - lam))

    def band_blocks(self, size: int) -> tuple[Tensor, Tensor]:
        """The fully masked weight ``W * M_k`` cut into (size x size) blocks, ``size >= k - 1``: block j
        on the diagonal (``current``, (n, size, size)) and block j just below it (``previous``,
        (n - 1, size, size)), gathered from ``W`` without forming the T x T product; rows and
        columns past T are zero."""
        length, device = self.T, self.weight.device
        blocks = -(-length // size)
        offsets = torch.arange(size, device=device)
        starts = (torch.arange(blocks, device=device) * size).view(blocks, 1, 1)
        rows = starts + offsets.view(1, size, 1)
        flat_weight, zero = self.weight.reshape(-1), self.weight.new_zeros(())

        def gather(rows: Tensor, cols: Tensor) -> Tensor:
            lag = rows - cols  # step i sees inputs i-k+1 .. i: 0 <= i - j <= k - 1
            inside = (lag >= 0) & (lag < self.k) & (rows < length) & (cols < length)
            flat = rows.clamp(max=length - 1) * length + cols.clamp(0, length - 1)
            return torch.where(inside, flat_weight[flat], zero)

        current = gather(rows, starts + offsets.view(1, 1, size))
        previous = gather(rows[1:], starts[1:] - size + offsets.view(1, 1, size))
        return current, previous

    def potential(self, x: Tensor) -> Tensor:
        """``H = (W * M_k(lambda)) X + b``: while lambda < 1 the blended weight is dense (``PSN.potential``);
        at lambda = 1 it is banded (each step sees k inputs), and from ``_BAND_MIN_BLOCKS`` blocks of
        ``max(k, 32)`` steps on ``H`` is a block-banded product, linear in T (``band_blocks``, as the
        sliding PSN but with a weight per step).

        Measured on the CPU (one thread, k = 4, a training step / a forward, interleaved): against
        the dense product, 0.46-0.65 / 0.46-0.60 at T in {384, 512}; at T = 256, 0.78-0.86 /
        0.80-0.85 for D in {128, 256} but 1.10 / 1.00 for D = 64; at T in {100, 128} 1.6-2.3x slower
        (the band's indexing and two products cost more than a small dense one). Against
        SpikingJelly's ``MaskedPSN`` (dense) at T in {1024, 4096}: 0.05-0.23."""
        if self.lambda_ == 1.0 and _BAND_MIN_BLOCKS * max(self.k, BAND_BLOCK) <= self.T:
            return self.potential_banded(x)
        return super().potential(x)

    def potential_banded(self, x: Tensor) -> Tensor:
        """``H = (W * M_k) X + b`` (lambda = 1) as the block-banded product over blocks of ``max(k, 32)``
        steps (``band_blocks``), whatever T."""
        if self.lambda_ < 1.0:
            raise RuntimeError(
                f"MaskedPSN.potential_banded needs the full mask (lambda_ = 1), lambda_ is {self.lambda_:g}; "
                "call potential, which blends the dense weight while lambda_ < 1"
            )
        self._check_length(x)
        size = min(max(self.k, BAND_BLOCK), self.T)
        return block_banded_product(*self.band_blocks(size), x, size) + self.bias.unsqueeze(1)

    def init_state(
        self, batch: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32
    ) -> MaskedPSNState:
        self._require_fully_masked()
        return MaskedPSNState(0, torch.zeros(batch, self.k - 1, self.d_model, device=device, dtype=dtype))

    def _require_fully_masked(self) -> None:
        if self.lambda_ < 1.0:
            raise RuntimeError(
                f"MaskedPSN can stream only once lambda_ = 1 (fully masked, causal); lambda_ is "
                f"{self.lambda_:g}: finish the schedule of lra_snn.training.callbacks.MaskedPSNLambdaSchedule, "
                "or set neuron.lambda_ = 1.0, or call forward on the whole sequence"
            )

    def potential_step(self, x_t: Tensor, state: MaskedPSNState) -> tuple[Tensor, MaskedPSNState]:
        """One step of ``H_t = sum_{j=t-k+1..t} W[t, j] x_j + b_t`` from the last k-1 inputs."""
        self._require_fully_masked()
        t, window = state
        if t >= self.T:
            raise RuntimeError(
                f"MaskedPSN(T={self.T}) has already run its {self.T} steps; start a new sequence with "
                "init_state, or build the neuron with a larger T"
            )
        recent = torch.cat([window, x_t.unsqueeze(1)], 1)  # inputs t-k+1 .. t (zeros before t = 0)
        row = self.weight[t, max(0, t - self.k + 1) : t + 1]
        row = F.pad(row, (self.k - row.numel(), 0))
        h_t = torch.einsum("bkd,k->bd", recent, row) + self.bias[t]
        return h_t, MaskedPSNState(t + 1, recent[:, 1:])

    def step(self, x_t: Tensor, state: MaskedPSNState) -> tuple[Tensor, MaskedPSNState]:
        h_t, state = self.potential_step(x_t, state)
        return self._record(spike(h_t, "atan")), state


class SlidingPSN(Neuron):
    """Sliding PSN of order k: ``H_t = sum_{i<k} w_i x_{t-k+1+i} + b``, ``S = H(H)``.

    A causal convolution over time with k weights shared by every channel (and every step), run as one
    banded product over time (``potential``), so it accepts any length and streams with the last k-1
    inputs as state. ``w`` is initialised to (..., 1/8, 1/4, 1/2, 1) (``w_{k-1}``, the newest input's
    weight, is 1) and the scalar ``b`` to -1. Inputs before t = 0 are zero. ``backend``: None (the
    Triton kernel on CUDA, the compiled loop on the CPU where numba imports), "torch", "triton" or
    "compiled" (see ``lra_snn.ops.dispatch``).
    """

    supported_backends = ("torch", "triton", "compiled")
    option_rules: ClassVar[Mapping[str, Rule]] = {"k": SIZE}

    def __init__(self, d_model: int, *, k: int, backend: str | None = None) -> None:
        super().__init__(d_model)
        self.check_options(k=k)
        self.k = k
        self.backend = backend
        halvings = torch.arange(k - 1, -1, -1, dtype=torch.get_default_dtype())
        self.weight = tag(nn.Parameter(0.5**halvings), "dynamics")
        self.bias = tag(nn.Parameter(torch.tensor(_INITIAL_BIAS)), "dynamics")

    def potential(self, x: Tensor) -> Tensor:
        """Hidden state for all steps as one banded product over time (PSN paper, the sliding PSN's
        ``H = W X`` with the banded ``W``, arXiv 2304.12760; ``lra_snn.ops.banded_product``): on the
        CPU a compiled loop over time (numba), on CUDA a Triton kernel, with ``backend="torch"`` a
        blocked Toeplitz matrix product."""
        self._check_input(x)
        return banded_product(x, self.weight.to(x.dtype), self.bias.to(x.dtype), backend=self.backend)

    def potential_sequential(self, x: Tensor) -> Tensor:
        """Hidden state step by step from the definition (inputs before t = 0 are zero)."""
        self._check_input(x)
        padded = F.pad(x, (0, 0, self.k - 1, 0))  # padded[:, t + i] = x_{t-k+1+i}
        steps = [
            torch.einsum("bkd,k->bd", padded[:, t : t + self.k], self.weight) + self.bias for t in range(x.shape[1])
        ]
        return torch.stack(steps, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self._record(spike(self.potential(x), "atan"))

    def forward_sequential(self, x: Tensor) -> Tensor:
        return self._record(spike(self.potential_sequential(x), "atan"))

    def init_state(self, batch: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
        """The last k-1 inputs (B, k-1, D), zero before the sequence starts."""
        return torch.zeros(batch, self.k - 1, self.d_model, device=device, dtype=dtype)

    def potential_step(self, x_t: Tensor, window: Tensor) -> tuple[Tensor, Tensor]:
        """One step of the hidden state from the last k-1 inputs and ``x_t`` (B, D)."""
        recent = torch.cat([window, x_t.unsqueeze(1)], 1)
        h_t = torch.einsum("bkd,k->bd", recent, self.weight) + self.bias
        return h_t, recent[:, 1:]

    def step(self, x_t: Tensor, window: Tensor) -> tuple[Tensor, Tensor]:
        h_t, window = self.potential_step(x_t, window)
        return self._record(spike(h_t, "atan")), window

    def macs_per_step(self) -> int:
        """k: the k shared weights of the causal window."""
        return self.k
