r"""Adaptive Dormand-Prince 5(4) for deterministic flows on an ensemble.

All particles share one step size, chosen from the largest scaled error
:math:`\max_n \| (e_n) / (atol + rtol\,|w_n|) \|_\infty`; steps land exactly on
the recording times. Order 5 (local extrapolation); coefficients from Hairer,
Norsett & Wanner, table 5.2.
"""

import numpy as np

C = np.array([0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1, 1])
A = [
    [],
    [1 / 5],
    [3 / 40, 9 / 40],
    [44 / 45, -56 / 15, 32 / 9],
    [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
    [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
    [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
]
B5 = np.array([35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0])
B4 = np.array([5179 / 57600, 0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40])


class Dopri5:
    """Adaptive ODE integrator for ``w' = f(w, t)`` on ``(N, dim)`` ensembles."""

    name = "dopri5"
    order = 5

    def __init__(self, rtol=1e-10, atol=1e-12, max_steps=1_000_000):
        self.rtol, self.atol, self.max_steps = rtol, atol, max_steps

    def integrate(self, field, W, t0, t1, h=None):
        """State at ``t1`` from ``W`` at ``t0``; returns ``(W, h_next)``."""
        span = t1 - t0
        if span <= 0:
            return W, h
        h = min(h or 1e-3 * max(span, 1e-12), span)
        t = t0
        k1 = field(W, t)
        for _ in range(self.max_steps):
            h = min(h, t1 - t)
            ks = [k1]
            for i in range(1, 7):
                ks.append(field(W + h * sum(a * k for a, k in zip(A[i], ks)), t + C[i] * h))
            w5 = W + h * sum(b * k for b, k in zip(B5, ks))
            err = h * sum((b5 - b4) * k for b5, b4, k in zip(B5, B4, ks))
            scale = self.atol + self.rtol * np.maximum(np.abs(W), np.abs(w5))
            norm = np.max(np.abs(err) / scale) if err.size else 0.0
            if not np.isfinite(norm):
                norm = np.inf
            if norm <= 1.0:
                t += h
                W, k1 = w5, ks[6]
                if t >= t1 - 1e-14 * max(1.0, abs(t1)):
                    factor = min(5.0, 0.9 * norm ** -0.2) if norm > 0 else 5.0
                    return W, h * factor
            factor = 0.9 * norm ** -0.2 if norm > 0 else 5.0
            h *= min(5.0, max(0.2, factor))
            if h < 1e-14 * max(1.0, abs(t)):
                raise FloatingPointError(f"dopri5 step size underflow at t={t:g}")
        raise FloatingPointError(f"dopri5 exceeded {self.max_steps} steps before t={t1:g}")
