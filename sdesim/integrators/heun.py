r"""Stochastic Heun for additive noise (predictor-corrector on the drift).

.. math::
    \bar w = w_n + b(w_n, t_n)\Delta t + G \Delta W_n, \qquad
    w_{n+1} = w_n + \tfrac12\,[b(w_n, t_n) + b(\bar w, t_{n+1})]\,\Delta t + G \Delta W_n.

For additive noise Ito and Stratonovich agree and the scheme has strong order 1
and weak order 2 (Kloeden & Platen, sec. 15.1). With state-dependent noise it
would converge to the Stratonovich solution, so it refuses that case.
"""

import numpy as np

from sdesim.integrators.base import AffineStep, Integrator, apply


class StochasticHeun(Integrator):
    """Strong order 1, weak order 2, additive noise only."""

    name = "heun"
    calculus = "stratonovich"       # where G depends on w: refused, as it is not the Ito SDE
    noise_types = ("additive",)
    orders = {"additive": (1.0, 2.0)}

    def affine(self, H, eigenvalues, G, dt, amplitude):
        r""":math:`K = H - \frac{\Delta t}{2} H^2`, :math:`L = (I - \frac{\Delta t}{2} H) G`."""
        K = H - 0.5 * dt * H @ H
        kappa = None if eigenvalues is None else eigenvalues - 0.5 * dt * eigenvalues * eigenvalues
        return AffineStep(K, (np.eye(H.shape[0]) - 0.5 * dt * H) @ G, kappa, three_point=self.name == "weak2")

    def increments(self, Z):
        """Standardised noise increments from the standard normals ``Z``."""
        return Z

    def step(self, sde, W, t, dt, Z):
        noise = apply(sde.factor(W, t), np.sqrt(dt) * self.increments(Z))
        b0 = sde.drift(W, t)
        predictor = W + b0 * dt + noise
        return W + 0.5 * (b0 + sde.drift(predictor, t + dt)) * dt + noise
