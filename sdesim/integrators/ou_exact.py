r"""Exact Ornstein-Uhlenbeck steps for a quadratic model with constant noise.

For :math:`dw = -H (w - w^*)\,dt + G\,dW` with symmetric :math:`H = U \Lambda U^T`:

.. math::
    w_{n+1} - w^* = e^{-H\Delta t}(w_n - w^*) + \xi, \qquad \xi \sim N(0, Q),\quad
    Q = U \Big[ (U^T G G^T U)_{ij}\, \frac{1 - e^{-(\lambda_i + \lambda_j)\Delta t}}
    {\lambda_i + \lambda_j} \Big] U^T,

(the limit :math:`\Delta t\,(U^T G G^T U)_{ij}` where :math:`\lambda_i + \lambda_j = 0`).
Exact in law for any step. With ``modified=True`` the drift is the modified
one, :math:`-(H + \frac{lr}{2} H^2)(w - w^*)`, still linear: the same formulas
hold with that matrix. With a learning-rate schedule the noise (and the
modified drift's ``lr``) is frozen at the start of each step.
"""

import numpy as np

from sdesim.dynamics.noise import psd_factor
from sdesim.integrators.base import AffineStep, Integrator


def ou_propagators(H, GGt, dt):
    """``(A, L)``: :math:`A = e^{-H\\Delta t}` and a factor ``L`` with :math:`L L^T = Q`."""
    lam, U = np.linalg.eigh(H)
    s = lam[:, None] + lam[None, :]
    small = np.abs(s * dt) < 1e-12
    kernel = np.where(small, dt, -np.expm1(-np.where(small, 1.0, s) * dt) / np.where(small, 1.0, s))
    Q = U @ ((U.T @ GGt @ U) * kernel) @ U.T
    L = psd_factor(0.5 * (Q + Q.T))
    A = (U * np.exp(-lam * dt)) @ U.T
    return A, L


class ExactOU(Integrator):
    """Exact in law for quadratic models with constant noise (any ``dt``)."""

    name = "exact_ou"
    noise_types = ("additive",)
    orders = {"additive": (float("inf"), float("inf"))}
    needs_quadratic = True

    def __init__(self):
        self._memo = None

    def affine(self, H, eigenvalues, G, dt, amplitude):
        r""":math:`K = I - e^{-H \Delta t}`, :math:`L L^T = Q` (module docstring), exact."""
        A, L = ou_propagators(H, amplitude * (G @ G.T), dt)
        return AffineStep(np.eye(H.shape[0]) - A, L, exact=True)

    def step(self, sde, W, t, dt, Z):
        model = sde.loss
        self.check(model.kind, sde.noise, model.dim)
        G = sde.factor(W, t)
        GGt = G @ G.T
        H = model.H
        if getattr(sde.dynamic, "modified", False):
            H = H + 0.5 * float(sde.dynamic.lr_at(t)) * H @ H
        key = (dt, GGt, H)
        if self._memo is None or self._memo[0] != dt or not all(
                np.array_equal(a, b) for a, b in zip(self._memo[1:3], key[1:])):
            self._memo = (dt, GGt, H, *ou_propagators(H, GGt, dt))
        A, L = self._memo[3:]
        return model.w_star + (W - model.w_star) @ A.T + Z[:, : L.shape[1]] @ L.T
