"""Euler-Maruyama: :math:`w_{n+1} = w_n + b(w_n, t_n)\\,\\Delta t + G(w_n, t_n)\\,\\Delta W_n`."""

import numpy as np

from sdesim.integrators.base import AffineStep, Integrator, apply


class EulerMaruyama(Integrator):
    """Strong order 1/2 (1 for additive noise), weak order 1."""

    name = "euler_maruyama"
    orders = {"additive": (1.0, 1.0), "multiplicative": (0.5, 1.0)}

    def affine(self, H, eigenvalues, G, dt, amplitude):
        """:math:`K = H`, :math:`L = G`."""
        return AffineStep(H, G, eigenvalues)

    def step(self, sde, W, t, dt, Z):
        return W + sde.drift(W, t) * dt + apply(sde.factor(W, t), np.sqrt(dt) * Z)
