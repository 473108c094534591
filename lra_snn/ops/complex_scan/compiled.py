"""Compiled CPU path of the complex first-order scan ``z_t = a_t z_{t-1} + b_t`` (PRF's membrane, arXiv
2410.03530; docs/neurons.md, section 2): numba loops over time on the real and imaginary parts
(``torch.view_as_real``), forward and in reverse time backward (``lra_snn.ops.host_compile``).

Forward, per (batch row, channel block), time outer and channels innermost, in the parts' dtype
(float32 for complex64): ``Re = (Re a Re z - Im a Im z) + Re b``, ``Im = (Re a Im z + Im a Re z) + Im b``,
the operations of PyTorch's complex multiply-add, each rounded on its own (no fused multiply-add).
Backward in PyTorch's convention for complex gradients: ``g_t = dy_t + conj(a_{t+1}) g_{t+1}``,
``db_t = g_t``, ``da_t = g_t conj(z_{t-1})`` (summed over batch and time for a per-channel decay),
``dh0 = conj(a_1) g_1``. The decay is per step (B, L, D) or per channel (D,).
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import Tensor

from lra_snn.ops.compiled_rows import parallel_kernel
from lra_snn.ops.linear_scan.compiled import scan_arguments, scan_backward, scan_forward


def _forward_loop(a: np.ndarray, b: np.ndarray, h0: np.ndarray, h: np.ndarray, per_step: bool, width: int) -> None:
    """Fill ``h`` (B, L, D, 2) from ``a`` ((B, L, D, 2) per step, else (1, 1, D, 2)), ``b`` (B, L, D, 2)
    and ``h0`` (B, D, 2), the last axis the real and imaginary parts."""
    batch, length, channels, _ = b.shape
    blocks = -(-channels // width)
    for task in numba.prange(batch * blocks):
        row, start = task // blocks, max((task % blocks) * width, 0)  # start >= 0 spares a wraparound check
        size = min(channels, start + width) - start
        decay_row = row if per_step else 0
        real = np.empty(size, b.dtype)
        imag = np.empty(size, b.dtype)
        for i in range(size):
            real[i], imag[i] = h0[row, start + i, 0], h0[row, start + i, 1]
        for t in range(length):
            step = t if per_step else 0
            for i in range(size):
                a_re, a_im = a[decay_row, step, start + i, 0], a[decay_row, step, start + i, 1]
                new_re = (a_re * real[i] - a_im * imag[i]) + b[row, t, start + i, 0]
                new_im = (a_re * imag[i] + a_im * real[i]) + b[row, t, start + i, 1]
                real[i], imag[i] = new_re, new_im
                h[row, t, start + i, 0] = new_re
                h[row, t, start + i, 1] = new_im


def _backward_loop(
    a: np.ndarray,
    h0: np.ndarray,
    h: np.ndarray,
    dy: np.ndarray,
    db: np.ndarray,
    da: np.ndarray,
    dh0: np.ndarray,
    per_step: bool,
    want_da: bool,
    width: int,
) -> None:
    """Fill ``db`` (B, L, D, 2), ``dh0`` (B, D, 2) and, when ``want_da``, ``da`` ((B, L, D, 2) per step,
    else (B, 1, D, 2): each row's sum over time) by the reverse-time loop ``g_t = dy_t + conj(a_{t+1}) g_{t+1}``."""
    batch, length, channels, _ = dy.shape
    blocks = -(-channels // width)
    for task in numba.prange(batch * blocks):
        row, start = task // blocks, max((task % blocks) * width, 0)
        size = min(channels, start + width) - start
        decay_row = row if per_step else 0
        carry_re = np.zeros(size, dy.dtype)  # conj(a_{t+1}) g_{t+1}
        carry_im = np.zeros(size, dy.dtype)
        sum_re = np.zeros(size, dy.dtype)  # sum over time of g_t conj(z_{t-1}), for a per-channel decay
        sum_im = np.zeros(size, dy.dtype)
        for t in range(length - 1, -1, -1):
            step = t if per_step else 0
            for i in range(size):
                g_re = dy[row, t, start + i, 0] + carry_re[i]
                g_im = dy[row, t, start + i, 1] + carry_im[i]
                db[row, t, start + i, 0] = g_re
                db[row, t, start + i, 1] = g_im
                a_re, a_im = a[decay_row, step, start + i, 0], a[decay_row, step, start + i, 1]
                carry_re[i] = a_re * g_re + a_im * g_im  # conj(a) g
                carry_im[i] = a_re * g_im - a_im * g_re
                if want_da:
                    if t > 0:
                        z_re, z_im = h[row, t - 1, start + i, 0], h[row, t - 1, start + i, 1]
                    else:
                        z_re, z_im = h0[row, start + i, 0], h0[row, start + i, 1]
                    da_re = g_re * z_re + g_im * z_im  # g conj(z)
                    da_im = g_im * z_re - g_re * z_im
                    if per_step:
                        da[row, t, start + i, 0] = da_re
                        da[row, t, start + i, 1] = da_im
                    else:
                        sum_re[i] += da_re
                        sum_im[i] += da_im
        for i in range(size):
            dh0[row, start + i, 0] = carry_re[i]
            dh0[row, start + i, 1] = carry_im[i]
            if want_da and not per_step:
                da[row, 0, start + i, 0] = sum_re[i]
                da[row, 0, start + i, 1] = sum_im[i]


forward_kernel = parallel_kernel(_forward_loop)
backward_kernel = parallel_kernel(_backward_loop)


class CompiledComplexScan(torch.autograd.Function):
    """``z`` (B, L, D) of complex ``a`` ((B, L, D) when ``per_step``, else (1, 1, D)), ``b`` (B, L, D) and
    ``h0`` (B, D)."""

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, h0: Tensor, per_step: bool) -> Tensor:
        a, b, h0 = (torch.view_as_real(t.detach().resolve_conj().contiguous()) for t in (a, b, h0))
        h = scan_forward(forward_kernel(), a, b, h0, per_step)
        ctx.save_for_backward(a, h0, h)
        ctx.per_step = per_step
        return torch.view_as_complex(h)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dy: Tensor):
        a, h0, h = ctx.saved_tensors
        dy_parts = torch.view_as_real(dy.resolve_conj().contiguous())
        decay_grad, db, dh0 = scan_backward(
            backward_kernel(), a, h0, h, dy_parts, ctx.per_step, ctx.needs_input_grad[0]
        )
        complex_decay_grad = None if decay_grad is None else torch.view_as_complex(decay_grad)
        return complex_decay_grad, torch.view_as_complex(db), torch.view_as_complex(dh0), None


def complex_scan_compiled(a: Tensor, b: Tensor, h0: Tensor | None = None) -> Tensor:
    """``z`` (B, L, D) from complex64/complex128 CPU tensors: ``a`` ((B, L, D) or (D,)), ``b`` (B, L, D) and
    ``h0`` ((B, D) or None: zero)."""
    decay, initial, per_step = scan_arguments(a, b, h0)
    return CompiledComplexScan.apply(decay, b, initial, per_step)
