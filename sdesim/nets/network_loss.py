r"""A real network as a loss: ``NetworkLoss(objective)`` runs under ``sd.simulate`` like any loss.

The loss is :math:`C(w) = \frac1n \sum_i \ell_i(w)` of an :class:`~sdesim.nets.objective.Objective`
(the NumPy :class:`~sdesim.nets.MLP` through ``MLPObjective``, a PyTorch module through
``TorchObjective``) on flat parameters ``w`` of length ``P``. Its kind is ``"network"``: like a
finite sum, SGD draws real minibatches (the :class:`~sdesim.dynamics.sampling.Sampler`, so the
same minibatches as a ``FiniteSumLoss`` of the same ``n`` and seed) and :math:`\Sigma_1(w)` is the
per-sample gradient covariance; unlike it, nothing is compiled: every evaluation is a full
network pass, taken one particle at a time in Python (the loop costs nothing next to the pass),
so every backend runs it on the NumPy reference stepper. Ensembles are meant to be small.

Modified flows (:class:`~sdesim.ModifiedFlow`) use exact Hessian-vector products
:math:`H v` (``objective.hvp``), with :math:`g = \nabla C` and :math:`H g` from one
``objective.grad_and_hvp`` (the MLP shares its forward and backward pass between them):

- order 1 (Barrett & Dherin 2021): :math:`\tilde f = -\nabla(C + \frac{lr}{4}|g|^2) = -(g + \frac{lr}{2} H g)`;
- order 2: :math:`\tilde f = -\big(g + \frac{lr}{2} H g + lr^2 (\frac13 H H g + \frac1{12} \nabla^3 C[g, g])\big)`
  (the terms :math:`f_2, f_3` of :mod:`sdesim.losses.modified` with :math:`f = -g`). The third
  derivative is a central difference of HVPs along :math:`e = g / |g|`,
  :math:`\nabla^3 C[g, g] = |g|\, \frac{H(w + \epsilon e) g - H(w - \epsilon e) g}{2 \epsilon} + O(\epsilon^2)`,
  :math:`\epsilon = 10^{-5} \max(1, |w|_{rms})`: truncation :math:`\epsilon^2 |\nabla^5 C| / 6` and
  rounding :math:`\sim 10^{-16} |H g| / \epsilon`, about :math:`10^{-10}` of the term
  (``tests/test_net_trajectories.py`` holds it to ``1e-6`` against the exact symbolic field);
- SGD with fixed batches (Smith, Dherin, Barrett & De 2021):
  :math:`\nabla \tilde C_{SGD} = g + \frac{lr}{2m} \sum_k H_k \nabla C_k` over the ``m = n / B``
  consecutive batches ``C_k``.

Costs, in full-batch gradients: ``hessian`` ``P`` HVPs per point, ``noise_covariance_at`` one
per-sample gradient matrix ``(n, P)`` per point; the order-1 field one gradient and one HVP
sharing their passes (2.2 gradients on the shipped 64-100-10 MLP: ``docs/net_vs_theory.md``).
"""

from __future__ import annotations

import numpy as np

from sdesim.errors import ConfigError, LossKindError, ShapeError
from sdesim.losses.base import BaseLoss
from sdesim.losses.symbolic import check_points
from sdesim.nets.objective import Objective

__all__ = ["NetworkLoss", "SGDModifiedNetworkLoss"]

#: Relative step of the central difference of HVPs behind the order-2 modified field.
THIRD_DERIVATIVE_STEP = 1e-5


class NetworkLoss(BaseLoss):
    """A network on its data as a loss of kind ``"network"`` (module docstring)."""

    kind = "network"
    per_sample_noise = True

    def __init__(self, objective: Objective):
        if not isinstance(objective, Objective):
            raise LossKindError(f"NetworkLoss needs an Objective (MLPObjective, TorchObjective), "
                                f"got {type(objective).__name__}")
        self.objective = objective

    @property
    def dim(self) -> int:
        return int(self.objective.n_params)

    @property
    def n_samples(self) -> int:
        return int(self.objective.n_samples)

    def __repr__(self):
        return f"NetworkLoss({type(self.objective).__name__}, P={self.dim}, n={self.n_samples})"

    # --- per point ------------------------------------------------------------------
    def _map(self, W, fn, shape=()):
        """``fn(w)`` for every point of ``W (..., P)``: an array ``(..., *shape)``."""
        W = check_points(W, self.dim)
        flat = W.reshape(-1, self.dim)
        out = np.empty((flat.shape[0],) + shape)
        for p, w in enumerate(flat):
            out[p] = fn(w)
        return out.reshape(W.shape[:-1] + shape)

    def value(self, W, t: float = 0.0):
        r""":math:`C(w)`: ``(..., P) -> (...)``."""
        return self._map(W, self.objective.loss)

    def grad(self, W, t: float = 0.0):
        r""":math:`\nabla C(w)`: ``(..., P) -> (..., P)``."""
        return self._map(W, self.objective.grad, (self.dim,))

    def hvp(self, W, V):
        r""":math:`\nabla^2 C(w)\, v` for matching stacks ``W, V (..., P)``."""
        W, V = check_points(W, self.dim), check_points(V, self.dim, what="V")
        if V.shape != W.shape:
            raise ShapeError(f"V has shape {V.shape}, W has {W.shape}")
        out = np.empty(W.shape)
        for i in np.ndindex(W.shape[:-1]):
            out[i] = self.objective.hvp(W[i], V[i])
        return out

    def hessian(self, W, t: float = 0.0):
        r""":math:`\nabla^2 C(w)` from ``P`` HVPs per point: ``(..., P) -> (..., P, P)``."""
        eye = np.eye(self.dim)
        return self._map(W, lambda w: np.stack([self.objective.hvp(w, e) for e in eye]), (self.dim, self.dim))

    def _indices(self, idx, n_points):
        idx = np.asarray(idx)
        if not np.issubdtype(idx.dtype, np.integer):
            raise ShapeError(f"sample indices must be integers, got dtype {idx.dtype}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_samples):
            raise ShapeError(f"sample indices must lie in [0, {self.n_samples}), got [{idx.min()}, {idx.max()}]")
        if idx.ndim == 1:
            idx = np.broadcast_to(idx, (n_points, idx.shape[0]))
        if idx.ndim != 2 or idx.shape[0] != n_points:
            raise ShapeError(f"indices must have shape (batch,) or ({n_points}, batch), got {idx.shape}")
        return idx

    def minibatch_grad(self, W, idx):
        r""":math:`g_B = \nabla C_B(w)` per point; ``idx`` ``(B,)`` or ``(n_points, B)``."""
        W = check_points(W, self.dim)
        flat = W.reshape(-1, self.dim)
        idx = self._indices(idx, flat.shape[0])
        out = np.empty_like(flat)
        for p, w in enumerate(flat):
            out[p] = self.objective.grad(w, idx[p])
        return out.reshape(W.shape)

    def per_sample_grad(self, W, idx=None):
        r""":math:`\nabla \ell_i(w)`: ``(..., n_idx, P)``."""
        W = check_points(W, self.dim)
        flat = W.reshape(-1, self.dim)
        idx = self._indices(np.arange(self.n_samples) if idx is None else idx, flat.shape[0])
        out = np.stack([self.objective.per_sample_grads(w, idx[p]) for p, w in enumerate(flat)])
        return out.reshape(W.shape[:-1] + out.shape[1:])

    def noise_covariance_at(self, W, t: float = 0.0):
        r""":math:`\Sigma_1(w) = \frac1n \sum_i (\nabla\ell_i - \nabla C)(\nabla\ell_i - \nabla C)^\top`: ``(..., P, P)``."""
        every = np.arange(self.n_samples)

        def cov(w):
            G = self.objective.per_sample_grads(w, every)
            G = G - G.mean(axis=0)
            return G.T @ G / len(G)
        return self._map(W, cov, (self.dim, self.dim))

    # --- modified flows ---------------------------------------------------------------
    def third_derivative(self, w, g):
        r""":math:`\nabla^3 C(w)[g, g]` by the central difference of HVPs (module docstring), ``(P,)``."""
        norm = float(np.linalg.norm(g))
        if norm == 0.0:
            return np.zeros_like(g)
        e = g / norm
        eps = THIRD_DERIVATIVE_STEP * max(1.0, float(np.sqrt(np.mean(w * w))))
        obj = self.objective
        return norm * (obj.hvp(w + eps * e, g) - obj.hvp(w - eps * e, g)) / (2.0 * eps)

    def modified_gradient(self, w, lr: float, order: int):
        r"""Minus GD's modified field of order 0, 1 or 2 at one point ``w (P,)`` (module docstring)."""
        obj = self.objective
        if order == 0:
            return obj.grad(w)
        g, hg = obj.grad_and_hvp(w)
        out = g + 0.5 * lr * hg
        if order == 2:
            out += lr**2 * (obj.hvp(w, hg) / 3.0 + self.third_derivative(w, g) / 12.0)
        return out

    def modified_field(self, lr: float, order: int):
        r"""GD's modified field :math:`\tilde f(W, t)` of order ``0``, ``1`` or ``2``, a callable on ``(..., P)``."""
        if int(order) != order or not 0 <= order <= 2:
            raise ConfigError(f"a NetworkLoss has modified fields of order 0, 1 and 2 (exact HVPs and a "
                              f"difference of HVPs for the third derivative), got order={order}")
        lr, order = float(lr), int(order)

        def field(W, t=0.0):
            return -self._map(W, lambda w: self.modified_gradient(w, lr, order), (self.dim,))
        return field

    def fixed_batches(self, batch_size: int) -> list[np.ndarray]:
        """Consecutive minibatches ``[0, B), [B, 2B), ...`` (``n`` must be a multiple of ``B``)."""
        if self.n_samples % batch_size:
            raise ShapeError(f"n = {self.n_samples} samples do not split into batches of {batch_size}")
        return list(np.arange(self.n_samples).reshape(-1, batch_size))

    def modified_sgd(self, lr: float, batch_size: int) -> SGDModifiedNetworkLoss:
        r"""Smith et al.'s modified loss of SGD over the ``m = n / B`` fixed consecutive batches."""
        return SGDModifiedNetworkLoss(self, float(lr), self.fixed_batches(int(batch_size)))


class SGDModifiedNetworkLoss:
    r""":math:`\tilde C_{SGD} = C + \frac{lr}{4m} \sum_k |\nabla C_k|^2` of a :class:`NetworkLoss`
    (value and gradient; ``ModifiedFlow(kind="sgd")`` follows minus its gradient)."""

    def __init__(self, loss: NetworkLoss, lr: float, batches):
        self.loss, self.lr, self.batches = loss, lr, batches

    def _one(self, w, want_grad):
        obj, m = self.loss.objective, len(self.batches)
        if not want_grad:
            grads = [obj.grad(w, b) for b in self.batches]
            return obj.loss(w) + self.lr / (4 * m) * sum(float(g @ g) for g in grads)
        grads, hgs = zip(*(obj.grad_and_hvp(w, idx=b) for b in self.batches))
        return np.mean(grads, axis=0) + self.lr / (2 * m) * sum(hgs)

    def value(self, W, t: float = 0.0):
        return self.loss._map(W, lambda w: self._one(w, False))

    def grad(self, W, t: float = 0.0):
        r""":math:`\nabla C + \frac{lr}{2m}\sum_k H_k \nabla C_k`: ``(..., P) -> (..., P)``."""
        return self.loss._map(W, lambda w: self._one(w, True), (self.dim,))

    @property
    def dim(self) -> int:
        return self.loss.dim
