"""Euler-Maruyama: :math:`w_{n+1} = w_n + b(w_n, t_n)\\,\\Delta t + G(w_n, t_n)\\,\\Delta W_n`."""

import numpy as np

from sdesim.integrators.base import Integrator, apply


class EulerMaruyama(Integrator):
    """Strong order 1/2 (1 for additive noise), weak order 1."""

    name = "euler_maruyama"
    strong_order = 0.5
    weak_order = 1.0

    def step(self, sde, W, t, dt, Z):
        return W + sde.drift(W, t) * dt + apply(sde.factor(W, t), np.sqrt(dt) * Z)
