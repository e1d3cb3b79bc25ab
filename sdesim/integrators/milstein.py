r"""Milstein scheme for diagonal noise (Ito).

.. math::
    w_{n+1,i} = w_{n,i} + b_i \Delta t + g_i \Delta W_i
    + \tfrac12\, g_i\, \partial_i g_i\, (\Delta W_i^2 - \Delta t),

with :math:`g_i = G_{ii}(w)`. The derivative :math:`\partial_i g_i` is taken by a
central difference with step :math:`\epsilon (1 + |w_i|)`, :math:`\epsilon = 10^{-5}`
(error :math:`O(\epsilon^2)`, far below the scheme's own). Strong order 1.
"""

import numpy as np

from sdesim.errors import ShapeError
from sdesim.integrators.base import Integrator

EPS = 1e-5


class Milstein(Integrator):
    """Strong order 1, weak order 1, diagonal noise."""

    name = "milstein"
    orders = {"additive": (1.0, 1.0), "multiplicative": (1.0, 1.0)}

    def check(self, loss_kind, noise, dim):
        """Diagonal noise only: a diagonal square constant factor, or state-dependent noise in 1D.

        (The eigen-factor of a state-dependent covariance in more dimensions is not diagonal.)
        """
        super().check(loss_kind, noise, dim)
        if not noise.additive and dim > 1:
            raise ShapeError(f"Milstein is implemented for diagonal noise only; state-dependent noise in "
                             f"{dim} dimensions is not: use euler_maruyama")
        if noise.additive:
            G = noise.factor
            if G.shape[0] != G.shape[1] or np.abs(G - np.diag(np.diag(G))).max(initial=0.0) > 1e-12 * max(
                    1.0, np.abs(G).max(initial=0.0)):
                raise ShapeError("Milstein is implemented for diagonal noise only; use euler_maruyama")

    def _diagonal(self, sde, W, t):
        G = np.broadcast_to(sde.factor(W, t), W.shape[:1] + sde.factor(W[:1], t).shape[-2:])
        if G.shape[-1] != W.shape[-1]:
            raise ShapeError("Milstein needs square diagonal noise (one noise column per variable)")
        off = G - G * np.eye(W.shape[-1])
        if np.abs(off).max() > 1e-12 * max(1.0, np.abs(G).max()):
            raise ShapeError("Milstein is implemented for diagonal noise only; use euler_maruyama")
        return np.diagonal(G, axis1=-2, axis2=-1)

    def step(self, sde, W, t, dt, Z):
        g = self._diagonal(sde, W, t)
        dg = np.empty_like(W)
        for i in range(W.shape[-1]):
            h = EPS * (1.0 + np.abs(W[:, i]))
            up, down = W.copy(), W.copy()
            up[:, i] += h
            down[:, i] -= h
            dg[:, i] = (self._diagonal(sde, up, t)[:, i] - self._diagonal(sde, down, t)[:, i]) / (2 * h)
        dW = np.sqrt(dt) * Z
        return W + sde.drift(W, t) * dt + g * dW + 0.5 * g * dg * (dW**2 - dt)
