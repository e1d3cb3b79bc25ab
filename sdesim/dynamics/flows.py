r"""Deterministic flows: gradient flow and the modified flows of GD and SGD.

- ``GradientFlow``: :math:`\dot w = -\nabla C(w)`.
- ``ModifiedFlow(lr, order=p)``: :math:`\dot w = \tilde f(w) = \sum_{i=0}^{p} lr^i f_{i+1}(w)`,
  GD's modified field by backward error analysis (:mod:`sdesim.losses.modified`);
  it follows GD to :math:`O(lr^{p+1})` over a fixed time ``t = k * lr``.
  On a ``QuadraticModel`` the series is closed-form,
  :math:`f_{i+1} = -H^{i+1} (w - w^*) / (i + 1)` (the expansion of :math:`\log(I - lr H)/lr`).
- ``ModifiedFlow(lr, order=1, kind="sgd", batch_size=B)``: gradient flow on Smith et
  al.'s :math:`\tilde C_{SGD} = C + \frac{lr}{4m}\sum_k |\nabla C_k|^2` over the ``m``
  fixed batches of a ``FiniteSumLoss``: the mean SGD iterate after an epoch
  of random-order fixed batches, to :math:`O(m^3 lr^3)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from sdesim.dynamics.base import Dynamic, as_count, check_positive
from sdesim.errors import ConfigError, LossKindError
from sdesim.losses.base import DATA_KINDS


@lru_cache(maxsize=32)
def symbolic_loss(loss):
    """A symbolic ``Loss`` for ``loss`` (a ``FiniteSumLoss`` through its data moments)."""
    return loss.as_loss() if loss.kind == "finite_sum" else loss


@lru_cache(maxsize=32)
def _gd_field(loss, lr, order):
    return symbolic_loss(loss).modified_field(lr, order)


@lru_cache(maxsize=32)
def _sgd_loss(loss, lr, batch_size):
    return loss.modified_sgd(lr, batch_size)


@dataclass(frozen=True)
class GradientFlow(Dynamic):
    r"""Gradient flow :math:`\dot w = -\nabla C(w)`."""

    continuous = True

    def drift(self, loss, W, t=0.0):
        return -loss.grad(W, t)

    @property
    def label(self):
        return "gradient flow"


@dataclass(frozen=True)
class ModifiedFlow(Dynamic):
    """Modified flow of GD (``kind="gd"``, any ``order``) or of SGD with fixed batches (``kind="sgd"``)."""

    lr: float
    order: int = 1
    kind: str = "gd"
    batch_size: int | None = None

    continuous = True

    def __post_init__(self):
        check_positive("lr", self.lr)
        if int(self.order) != self.order or self.order < 0:
            raise ConfigError(f"order must be a non-negative integer, got {self.order}")
        if self.kind not in ("gd", "sgd"):
            raise ConfigError(f"kind must be 'gd' or 'sgd', got {self.kind!r}")
        if self.kind == "sgd" and (self.batch_size is None or self.order != 1):
            raise ConfigError("kind='sgd' needs batch_size and order=1 (Smith et al.'s modified loss)")
        if self.kind == "sgd":
            check_positive("batch_size", self.batch_size, integer=True)
        as_count(self, "order")
        as_count(self, "batch_size")
        if self.kind == "gd" and self.batch_size is not None:
            raise ConfigError("batch_size applies to kind='sgd' only (GD's modified flow has no minibatches)")

    def drift(self, loss, W, t=0.0):
        kind = loss.kind
        if self.kind == "sgd":
            if kind not in DATA_KINDS:
                raise LossKindError("ModifiedFlow(kind='sgd') needs a FiniteSumLoss or NetworkLoss (its minibatches)")
            return -_sgd_loss(loss, self.lr, self.batch_size).grad(W, t)
        if kind == "quadratic":
            d = np.asarray(W, dtype=float) - loss.w_star
            out = np.zeros_like(d)
            power = d
            for i in range(self.order + 1):
                power = power @ loss.H
                out -= self.lr**i * power / (i + 1)
            return out
        return _gd_field(loss, self.lr, self.order)(W, t)

    @property
    def label(self):
        if self.kind == "sgd":
            return f"SGD modified flow (lr={self.lr:g}, B={self.batch_size})"
        return f"modified flow, order {self.order} (lr={self.lr:g})"
