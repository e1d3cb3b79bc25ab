r"""The network-loss contract: a network bound to its training data, on flat parameter vectors.

An :class:`Objective` is what every real-network analysis needs from a model,
whatever builds it (the package's NumPy :class:`~sdesim.nets.MLP`, a PyTorch module
through :class:`~sdesim.nets.torch_adapter.TorchObjective`):

- ``n_params`` (``P``) and ``n_samples`` (``n``);
- ``loss(w, idx=None)``: :math:`C_S(w) = \frac{1}{|S|}\sum_{i \in S} \ell_i(w)` over the
  samples ``idx`` (all of them when ``None``), weight decay included;
- ``grad(w, idx=None)``: :math:`\nabla C_S(w)`, ``(P,)``;
- ``hvp(w, v, idx=None)``: :math:`\nabla^2 C_S(w)\, v`, ``(P,)``, exact (R-operator or
  double backward);
- ``per_sample_grads(w, idx)``: :math:`\nabla \ell_i(w)` for ``i`` in ``idx``, ``(len(idx), P)``.

with defaults built from these (subclasses override them with cheaper products):
``loss_and_grad(w, idx=None)``; ``grad_and_hvp(w, v=None, idx=None)``,
:math:`(g, H v)` with :math:`g = \nabla C_S(w)` and ``v = g`` when ``None`` (the modified
flows' :math:`g + \frac{lr}{2} H g`; the MLP shares one forward and backward pass between
them); and ``sample_grad_products(w, V)``, :math:`G V` ``(n, m)``
(rows :math:`\nabla \ell_i(w)^\top V`, for the noise along directions ``V (P, m)``).

All arrays are float64 NumPy arrays; ``w`` is never modified.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class Objective(ABC):
    """A network and its data (module docstring)."""

    n_params: int
    n_samples: int

    @abstractmethod
    def loss(self, w, idx=None) -> float:
        """Mean loss over the samples ``idx`` (all when ``None``)."""

    @abstractmethod
    def grad(self, w, idx=None) -> np.ndarray:
        """Gradient of :meth:`loss`, ``(P,)``."""

    @abstractmethod
    def hvp(self, w, v, idx=None) -> np.ndarray:
        """Hessian of :meth:`loss` times ``v``, ``(P,)``."""

    @abstractmethod
    def per_sample_grads(self, w, idx) -> np.ndarray:
        """Per-sample gradients, ``(len(idx), P)``."""

    def loss_and_grad(self, w, idx=None):
        """``(loss(w, idx), grad(w, idx))``; subclasses may share one forward pass."""
        return self.loss(w, idx), self.grad(w, idx)

    def grad_and_hvp(self, w, v=None, idx=None):
        """``(g, H v)`` with ``g = grad(w, idx)``, ``H`` the Hessian on the same samples and
        ``v = g`` when ``None``; subclasses may share the passes of ``g`` with ``H v``."""
        g = self.grad(w, idx)
        return g, self.hvp(w, g if v is None else v, idx)

    def sample_grad_products(self, w, V, chunk_size=512) -> np.ndarray:
        """``G V (n, m)``: :math:`\\nabla \\ell_i(w) \\cdot V_{:, j}` for every sample, ``V (P, m)``.

        From :meth:`per_sample_grads` on ``chunk_size`` samples at a time; subclasses
        with a matrix-free product (``jvp``, cached backward passes) override it.
        """
        V = np.asarray(V, dtype=float)
        return np.concatenate([self.per_sample_grads(w, np.arange(i, min(i + chunk_size, self.n_samples))) @ V
                               for i in range(0, self.n_samples, chunk_size)])


class MLPObjective(Objective):
    """An :class:`~sdesim.nets.MLP` on a data set ``(x, y)``."""

    def __init__(self, net, x, y):
        self.net = net
        self.x, self.y = np.asarray(x, dtype=float), np.asarray(y)
        self.n_params, self.n_samples = net.n_params, len(self.y)

    def _data(self, idx):
        return (self.x, self.y) if idx is None else (self.x[idx], self.y[idx])

    def loss(self, w, idx=None) -> float:
        return float(self.net.loss(w, *self._data(idx)))

    def grad(self, w, idx=None) -> np.ndarray:
        return self.net.grad(w, *self._data(idx))

    def hvp(self, w, v, idx=None) -> np.ndarray:
        return self.net.hvp(w, *self._data(idx), v)

    def per_sample_grads(self, w, idx) -> np.ndarray:
        return self.net.per_sample_grads(w, *self._data(idx))

    def loss_and_grad(self, w, idx=None):
        return self.net.loss_and_grad(w, *self._data(idx))

    def grad_and_hvp(self, w, v=None, idx=None):
        return self.net.grad_and_hvp(w, *self._data(idx), v)

    def sample_grad_products(self, w, V, chunk_size=2048) -> np.ndarray:
        J = self.net.sample_jacobian(w, self.x, self.y, chunk_size)
        return np.column_stack([J.matvec(v) for v in np.asarray(V, dtype=float).T])
