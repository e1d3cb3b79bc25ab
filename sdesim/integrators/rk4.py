r"""Classical 4th-order Runge-Kutta on a fixed step, for deterministic flows :math:`\dot w = f(w, t)`.

.. math::

    k_1 = f(w_n, t_n),\quad k_2 = f(w_n + \tfrac{h}{2} k_1, t_n + \tfrac{h}{2}),\quad
    k_3 = f(w_n + \tfrac{h}{2} k_2, t_n + \tfrac{h}{2}),\quad k_4 = f(w_n + h k_3, t_n + h),

    w_{n+1} = w_n + \tfrac{h}{6} (k_1 + 2 k_2 + 2 k_3 + k_4).

Global error :math:`O(h^4)`. On a linear field :math:`f = -K (w - w^*)` one step is
:math:`\delta_{n+1} = P(-hK)\,\delta_n` with :math:`P(z) = 1 + z + z^2/2 + z^3/6 + z^4/24`.
"""

import numpy as np


class RK4:
    """Fixed-step RK4 for ``w' = f(w, t)`` on ``(N, dim)`` ensembles (module docstring)."""

    name = "rk4"
    order = 4
    fixed_step = True

    def step(self, field, W, t, dt):
        """``w_{n+1}`` from ``W`` at ``t`` (``field(W, t)`` is the vector field, ``(N, dim)``)."""
        with np.errstate(over="ignore", invalid="ignore"):   # a blow-up is caught as non-finite afterwards
            k1 = field(W, t)
            k2 = field(W + dt / 2 * k1, t + dt / 2)
            k3 = field(W + dt / 2 * k2, t + dt / 2)
            k4 = field(W + dt * k3, t + dt)
            return W + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)

    @staticmethod
    def linear_step(K, dt):
        r"""``M = I - P(-dt K)``: one step on ``f = -K (w - w*)`` is :math:`\delta \mapsto \delta - M \delta`."""
        A = dt * np.asarray(K, dtype=float)
        A2 = A @ A
        return A - A2 / 2 + A2 @ A / 6 - A2 @ A2 / 24
