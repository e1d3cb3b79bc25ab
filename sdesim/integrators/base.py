r"""How continuous dynamics are stepped: the contract every SDE integrator meets.

An SDE :math:`dw = b(w, t)\,dt + G(w, t)\,dW` (Ito) is stepped by
``step(sde, W, t, dt, Z)`` with ``W`` of shape ``(N, dim)`` and ``Z`` standard
normals of shape ``(N, r)`` (``r`` the number of noise columns), returning the
new ``(N, dim)`` state. ``sde`` exposes ``drift(W, t)``, ``factor(W, t)``
(``(N, dim, r)``) and ``additive`` (``True`` when ``G`` does not depend on ``w``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class Integrator(ABC):
    """A fixed-step SDE scheme with its strong and weak orders."""

    name: str = ""
    strong_order: float = 0.0
    weak_order: float = 0.0
    needs_additive: bool = False

    @abstractmethod
    def step(self, sde, W, t, dt, Z):
        """One step from ``t`` to ``t + dt``; returns the new state ``(N, dim)``."""


def apply(G, V):
    """``G @ v`` for stacks: ``G`` (N, dim, r) or (dim, r), ``V`` (N, r) -> (N, dim)."""
    if G.ndim == 2:
        return V @ G.T
    return np.einsum("nij,nj->ni", G, V)
