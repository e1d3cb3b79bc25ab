r"""The loss contract: what every loss gives the simulator, the analyses and the Fokker-Planck solver.

A loss :math:`C(w)` on :math:`\mathbb{R}^{dim}` has

- ``dim`` and ``names`` (one name per variable);
- ``value(W, t)``, ``grad(W, t)``, ``hessian(W, t)`` on ``W`` of shape ``(..., dim)``
  (``t = k * lr``: losses with time-dependent parameters use it, the others ignore it);
- ``kind``: ``"symbolic"`` (a sympy expression), ``"finite_sum"`` (an average of
  per-sample losses over data), ``"quadratic"`` (a quadratic model) or ``"network"``
  (a real network on its data, :class:`sdesim.nets.NetworkLoss`), which decides
  which compiled kernels can run it (none run a network: the NumPy reference does);
- ``per_sample_noise``: whether the loss defines its own per-sample gradient noise
  :math:`\Sigma_1(w)` (finite sums: the covariance of the per-sample gradients;
  quadratic models: their constant ``S``). A loss that does not leaves the noise to the
  dynamic (``noise_covariance``/``noise_factor``, the identity by default);
- ``noise_covariance_at(W, t)``: :math:`\Sigma_1(w)`, ``(..., dim, dim)``, where
  ``per_sample_noise``;
- ``time_parameters``: the parameters that depend on ``t`` (empty by default).

``as_loss`` turns what a user may pass (a loss, or a catalog ``Landscape``) into the loss.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from sdesim.errors import LossKindError

KINDS = ("symbolic", "finite_sum", "quadratic", "network")
DATA_KINDS = ("finite_sum", "network")
"""Kinds that average per-sample losses over data: SGD draws real minibatches, Sigma_1 is their covariance."""


class BaseLoss(ABC):
    """Base class of every loss (module docstring)."""

    kind: str = ""
    per_sample_noise: bool = False
    time_parameters: tuple = ()

    @property
    @abstractmethod
    def dim(self) -> int:
        """Number of variables."""

    @property
    def names(self) -> tuple[str, ...]:
        """Variable names (``w0, w1, ...`` unless the loss names them)."""
        return tuple(f"w{i}" for i in range(self.dim))

    @abstractmethod
    def value(self, W, t: float = 0.0):
        """:math:`C(w)`: ``(..., dim) -> (...)``."""

    @abstractmethod
    def grad(self, W, t: float = 0.0):
        r""":math:`\nabla C(w)`: ``(..., dim) -> (..., dim)``."""

    @abstractmethod
    def hessian(self, W, t: float = 0.0):
        r""":math:`\nabla^2 C(w)`: ``(..., dim) -> (..., dim, dim)``."""

    def noise_covariance_at(self, W, t: float = 0.0):
        r"""Per-sample gradient covariance :math:`\Sigma_1(w)`: ``(..., dim) -> (..., dim, dim)``."""
        raise LossKindError(f"{type(self).__name__} defines no per-sample gradient noise: give the dynamic "
                            "a noise_covariance or noise_factor, or use a FiniteSumLoss or QuadraticModel")


def as_loss(loss) -> BaseLoss:
    """The loss behind ``loss`` (a catalog landscape gives its loss); raises on anything else."""
    from sdesim.losses.catalog import Landscape
    if isinstance(loss, Landscape):
        loss = loss.loss
    if not isinstance(loss, BaseLoss) or loss.kind not in KINDS:
        raise LossKindError(f"expected a loss (Loss, FiniteSumLoss, QuadraticModel, NetworkLoss or a catalog landscape), "
                            f"got {type(loss).__name__}")
    return loss
