r"""Adaptive Dormand-Prince 5(4) for deterministic flows on an ensemble.

All particles share one step size, chosen from the largest scaled error
:math:`\max_n \| (e_n) / (atol + rtol\,|w_n|) \|_\infty`; steps land exactly on
the recording times. Order 5 (local extrapolation); coefficients from Hairer,
Norsett & Wanner, table 5.2.
"""

import numpy as np

from sdesim.errors import DivergenceError

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
    fixed_step = False

    def __init__(self, rtol=1e-10, atol=1e-12, max_steps=200_000):
        self.rtol, self.atol, self.max_steps = rtol, atol, max_steps

    def integrate(self, field, W, t0, t1, h=None, bound=np.inf):
        """State at ``t1`` from ``W`` at ``t0``; returns ``(W, h_next, t_stop)``.

        A particle that leaves ``|w_i| <= bound`` after an accepted step, or that alone
        forces the shared step below round-off (a finite-time blow-up), is stopped: its
        row is NaN from then on and ``t_stop`` (``(N,)``, NaN for the others) holds the
        time it was stopped, so the rest of the ensemble goes on. Raises
        :class:`~sdesim.errors.DivergenceError` when the steps left at the current step size would
        exceed ``max_steps`` (a stiff field).
        """
        with np.errstate(over="ignore", invalid="ignore"):   # overflowing trial stages are rejected
            return self._integrate(field, W, t0, t1, h, bound)

    def _integrate(self, field, W, t0, t1, h, bound):
        W = np.array(W, dtype=float)
        t_stop = np.full(W.shape[0], np.nan)
        span = t1 - t0
        if span <= 0:
            return W, h, t_stop
        active = np.flatnonzero(np.isfinite(W).all(axis=1))
        h = min(h or 1e-3 * max(span, 1e-12), span)
        t = t0
        X = W[active]
        k1 = field(X, t) if active.size else X
        h_accepted = h
        for n in range(self.max_steps):
            if not active.size:
                return W, h, t_stop
            if n > 1000 and t1 - t > h_accepted * (self.max_steps - n):
                raise DivergenceError(f"the flow is too stiff for explicit adaptive steps: step {h:.2g} with "
                                      f"{t1 - t:.3g} of time left would exceed {self.max_steps} steps (a modified "
                                      f"flow far beyond lr * curvature ~ 1?)")
            h = min(h, t1 - t)
            ks = [k1]
            for i in range(1, 7):
                ks.append(_finite_field(field, X + h * sum(a * k for a, k in zip(A[i], ks)), t + C[i] * h))
            w5 = X + h * sum(b * k for b, k in zip(B5, ks))
            err = h * sum((b5 - b4) * k for b5, b4, k in zip(B5, B4, ks))
            scale = self.atol + self.rtol * np.maximum(np.abs(X), np.abs(w5))
            per = np.max(np.abs(err) / scale, axis=1) if err.size else np.zeros(len(X))
            per = np.where(np.isfinite(per), per, np.inf)
            norm = per.max(initial=0.0)
            if norm <= 1.0:
                h_accepted = h
                t += h
                X, k1 = w5, ks[6]
                out = ~(np.abs(X) <= bound).all(axis=1)
                if out.any():
                    active, X, k1 = self._stop(W, t_stop, active, X, k1, out, t)
                if t >= t1 - 1e-14 * max(1.0, abs(t1)):
                    W[active] = X
                    factor = min(5.0, 0.9 * norm ** -0.2) if norm > 0 else 5.0
                    return W, h * factor, t_stop
                factor = 0.9 * norm ** -0.2 if norm > 0 else 5.0
            else:
                factor = 0.9 * norm ** -0.2
            h *= min(5.0, max(0.2, factor))
            if h < 1e-14 * max(1.0, abs(t)):
                # the particles that force the step below round-off blow up in finite time: stop them
                active, X, k1 = self._stop(W, t_stop, active, X, k1, per > 1.0, t)
                h = 1e-3 * max(span, 1e-12)
        raise DivergenceError(f"dopri5 exceeded {self.max_steps} steps before t={t1:g}: the flow is too stiff "
                              f"for an explicit adaptive scheme")

    @staticmethod
    def _stop(W, t_stop, active, X, k1, mask, t):
        """Stop the active particles in ``mask`` at time ``t``: NaN rows in ``W``."""
        W[active[mask]] = np.nan
        t_stop[active[mask]] = t
        keep = ~mask
        W[active[keep]] = X[keep]
        return active[keep], X[keep], k1[keep]


def _finite_field(field, Y, t):
    """``field(Y, t)`` on the finite rows of ``Y``, NaN on the others (a trial stage that overflowed)."""
    ok = np.isfinite(Y).all(axis=1)
    if ok.all():
        return field(Y, t)
    out = np.full_like(Y, np.nan)
    if ok.any():
        out[ok] = field(Y[ok], t)
    return out
