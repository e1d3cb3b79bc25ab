r"""Simplified weak order-2 scheme for additive noise (Kloeden & Platen, eq. 15.1.3).

Heun's drift average with three-point increments
:math:`\Delta\hat W \in \{-\sqrt{3\Delta t}, 0, \sqrt{3\Delta t}\}` (probabilities
1/6, 2/3, 1/6), which match the Gaussian moments up to order 5: weak order 2 at
the cost of one uniform number per noise column. The three-point variable is
built from the given normal ``Z`` through its CDF, so the scheme uses the same
random stream as every other integrator.
"""

import numpy as np
from scipy.special import ndtr

from sdesim.integrators.heun import StochasticHeun


def three_point(Z):
    """Map standard normals to the three-point variable with the same first five moments."""
    u = ndtr(Z)
    return np.sqrt(3.0) * ((u > 5.0 / 6.0).astype(float) - (u < 1.0 / 6.0).astype(float))


class WeakOrder2(StochasticHeun):
    """Weak order 2 for additive noise; no strong convergence."""

    name = "weak2"
    orders = {"additive": (0.0, 2.0)}

    def increments(self, Z):
        return three_point(Z)
