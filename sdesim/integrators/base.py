r"""How continuous dynamics are stepped: the contract every SDE integrator meets.

An SDE :math:`dw = b(w, t)\,dt + G(w, t)\,dW` (Ito) is stepped by
``step(sde, W, t, dt, Z)`` with ``W`` of shape ``(N, dim)`` and ``Z`` standard
normals of shape ``(N, r)`` (``r`` the number of noise columns), returning the
new ``(N, dim)`` state. ``sde`` exposes ``drift(W, t)``, ``factor(W, t)``
(``(N, dim, r)``) and ``additive`` (``True`` when ``G`` does not depend on ``w``).

Each integrator declares itself: the calculus it converges to, the noise types
it handles (``"additive"``: ``G`` constant; ``"multiplicative"``: ``G(w)``), its
strong and weak orders per noise type, whether it needs a quadratic model, and
its one-step affine form on a linear drift (:meth:`Integrator.affine`), from
which the quadratic-model kernels of every backend are built.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from sdesim.errors import UnsupportedError


@dataclass(frozen=True, eq=False)
class AffineStep:
    r"""One step on a linear SDE :math:`d\delta = -H \delta\, dt + G\, dW` (:math:`\delta = w - w^*`).

    .. math:: \delta_{n+1} = \delta_n - a_n K \delta_n + b_n L \xi_n

    with :math:`\xi_n` standard normals (the three-point variable when ``three_point``).
    ``exact=False``: :math:`a_n = \Delta t`, :math:`b_n = \sqrt{\Delta t\, s\, lr_n / B}`
    (``L`` a factor of the unit covariance); ``exact=True``: :math:`a_n = 1`,
    :math:`b_n = \sqrt{lr_n / lr}` (``L`` carries the whole step covariance at ``lr``).
    ``kappa``: the eigenvalues of ``K`` in ``H``'s eigenbasis when known in closed form.
    """

    K: np.ndarray
    L: np.ndarray
    kappa: np.ndarray | None = None
    exact: bool = False
    three_point: bool = False


class Integrator(ABC):
    """A fixed-step SDE scheme and what it declares about itself (module docstring)."""

    name: str = ""
    calculus: str = "ito"
    noise_types: tuple = ("additive", "multiplicative")
    orders: dict = {}
    """``{noise type: (strong order, weak order)}``."""
    needs_quadratic: bool = False

    @property
    def strong_order(self) -> float:
        """Strong order on the hardest noise type it handles."""
        return min(strong for strong, _ in self.orders.values())

    @property
    def weak_order(self) -> float:
        return min(weak for _, weak in self.orders.values())

    @property
    def has_affine(self) -> bool:
        """Whether the scheme declares the affine form of its own step: :meth:`affine` is defined by the
        class that defines :meth:`step`, or by a subclass of it (an inherited ``affine`` of a
        parent whose ``step`` was overridden describes the parent's scheme, not this one)."""
        owner = lambda name: next(c for c in type(self).__mro__ if name in c.__dict__)
        affine, step = owner("affine"), owner("step")
        return affine is not Integrator and issubclass(affine, step)

    @property
    def needs_additive(self) -> bool:
        return "multiplicative" not in self.noise_types

    def check(self, loss_kind: str, noise, dim: int):
        """Raise :class:`UnsupportedError` when this scheme cannot step ``noise`` (a resolved ``Noise``) in ``dim``."""
        if self.needs_quadratic and loss_kind != "quadratic":
            raise UnsupportedError(f"integrator {self.name!r} needs a QuadraticModel (got a {loss_kind} loss)")
        if self.needs_additive and not noise.additive:
            raise UnsupportedError(f"integrator {self.name!r} needs additive noise; this diffusion's noise "
                                   f"depends on w (use 'euler_maruyama' or 'milstein')")

    @abstractmethod
    def step(self, sde, W, t, dt, Z):
        """One step from ``t`` to ``t + dt``; returns the new state ``(N, dim)``."""

    def affine(self, H, eigenvalues, G, dt, amplitude) -> AffineStep | None:
        """This scheme's :class:`AffineStep` on ``dw = -H (w - w*) dt + sqrt(amplitude) G dW``, or ``None``.

        ``eigenvalues``: ``H``'s (for closed forms), ``amplitude = s lr / B``.
        """
        return None


def apply(G, V):
    """``G @ v`` for stacks: ``G`` (N, dim, r) or (dim, r), ``V`` (N, r) -> (N, dim)."""
    if G.ndim == 2:
        return V @ G.T
    return np.einsum("nij,nj->ni", G, V)
