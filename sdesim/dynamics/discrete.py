r"""Discrete dynamics: gradient descent and minibatch SGD (with momentum, nudging).

SGD: :math:`w_{k+1} = w_k - lr_k\, g_B(w_k)` with :math:`g_B` the mean gradient of
a minibatch of size ``B``; with momentum :math:`\mu` (heavy ball)
:math:`v_{k+1} = \mu v_k - lr_k g_B(w_k + \nu \mu v_k)`, :math:`w_{k+1} = w_k + v_{k+1}`
(:math:`\nu = 1` for Nesterov). Time :math:`t_k = k\, lr`.

On a ``FiniteSumLoss`` minibatches are real samples of the data:

- ``"replacement"``: every step ``B`` indices drawn uniformly with replacement,
  :math:`\mathrm{Cov}[g_B] = \Sigma_1 / B`;
- ``"shuffle"``: random reshuffling every epoch, consecutive batches of the permutation;
- ``"fixed"``: the data split once into ``m = n / B`` consecutive batches, visited in
  a fresh random order every epoch (Smith et al. 2021).

On a ``QuadraticModel`` or a ``Loss``, :math:`g_B = \nabla C + \xi`,
:math:`\xi \sim N(0, \Sigma_1(w) / B)` (see :mod:`sdesim.dynamics.noise`).

Nudged SGD (Jastrzebski et al. 2019) multiplies the step along the top
``nudge_k`` Hessian eigendirections by ``nudge_factor``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sdesim.dynamics.base import Dynamic, WithLearningRate, as_count, check_positive
from sdesim.dynamics.noise import check_noise_spec
from sdesim.dynamics.sampling import SAMPLINGS
from sdesim.dynamics.schedules import Schedule
from sdesim.errors import ConfigError



@dataclass(frozen=True)
class GD(Dynamic, WithLearningRate):
    r"""Full-batch gradient descent :math:`w_{k+1} = w_k - lr_k \nabla C(w_k)`."""

    lr: float
    schedule: Schedule | None = None

    def __post_init__(self):
        check_positive("lr", self.lr)

    @property
    def label(self):
        return f"GD (lr={self.lr:g}{self._extras()})"


@dataclass(frozen=True)
class SGD(Dynamic, WithLearningRate):
    """Minibatch SGD; see the module docstring for the update and the sampling modes."""

    lr: float
    batch_size: int = 1
    sampling: str = "replacement"
    momentum: float = 0.0
    nesterov: bool = False
    schedule: Schedule | None = None
    noise_covariance: Any = None
    noise_factor: Any = None
    nudge_k: int = 0
    nudge_factor: float = 1.0

    def __post_init__(self):
        check_positive("lr", self.lr)
        check_positive("batch_size", self.batch_size, integer=True)
        if self.sampling not in SAMPLINGS:
            raise ConfigError(f"sampling must be one of {SAMPLINGS}, got {self.sampling!r}")
        if not 0.0 <= self.momentum < 1.0:
            raise ConfigError(f"momentum must lie in [0, 1), got {self.momentum}")
        if self.nesterov and self.momentum == 0.0:
            raise ConfigError("nesterov=True needs momentum > 0")
        if int(self.nudge_k) != self.nudge_k or self.nudge_k < 0 or not self.nudge_factor >= 0:
            raise ConfigError(f"nudge_k must be a non-negative integer and nudge_factor non-negative, "
                              f"got {self.nudge_k}, {self.nudge_factor}")
        as_count(self, "batch_size")
        as_count(self, "nudge_k")
        cov, fac = check_noise_spec(self.noise_covariance, self.noise_factor)
        object.__setattr__(self, "noise_covariance", cov)
        object.__setattr__(self, "noise_factor", fac)

    @property
    def label(self):
        return f"SGD (lr={self.lr:g}, B={self.batch_size}{self._extras()})"


def sgd_update(W, V, g, lr, momentum=0.0):
    r"""One SGD step from the (stochastic) gradient ``g``: returns ``(W', V')``.

    Heavy ball: :math:`v' = \mu v - lr\, g`, :math:`w' = w + v'`; without momentum
    :math:`w' = w - lr\, g` (``V`` unchanged, may be ``None``). ``g`` is taken at ``lookahead(W, V, ...)``.
    """
    if momentum:
        V = momentum * V - lr * g
        return W + V, V
    return W - lr * g, V


def lookahead(W, V, momentum=0.0, nesterov=False):
    r"""Where the gradient is taken: :math:`w + \mu v` for Nesterov, else :math:`w`."""
    return W + momentum * V if nesterov else W


def nudged(g, U, factor):
    r"""Nudged SGD's gradient: ``g`` with its part along the orthonormal columns of ``U`` (the top
    Hessian eigenvectors) scaled by ``factor``, :math:`g - (1 - f)\, U U^T g`.

    ``g (..., dim)``, ``U (..., dim, k)``.
    """
    along = np.einsum("...ik,...i->...k", U, g)
    return g - (1.0 - factor) * np.einsum("...ik,...k->...i", U, along)
