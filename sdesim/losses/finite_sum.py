r"""``FiniteSumLoss``: :math:`C(w) = \frac1n \sum_i l(w; x_i)` with real minibatches.

The per-sample loss is a sympy expression in the parameters ``w`` and data
symbols; the data are arrays with one row per sample. Per-sample gradients,
minibatch gradients, the full loss and the per-sample gradient covariance

.. math:: \Sigma_1(w) = \frac1n \sum_i (\nabla l_i - \nabla C)(\nabla l_i - \nabla C)^T

run in generated Numba kernels, parallel over particles, looping over samples
inside the kernel (no ``(particles, samples, dim)`` array is formed).
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import sympy

from sdesim import codegen
from sdesim._threading import launch
from sdesim.errors import ConfigError, NonFiniteError, ShapeError, SymbolError
from sdesim.losses.base import BaseLoss
from sdesim.losses.parsing import parse, symbol
from sdesim.losses.symbolic import Loss, check_points

_KERNELS = """
@njit(cache=True, parallel=True)
def full_many(W, X, value, grad):
    n = X.shape[0]
    d = W.shape[1]
    for p in prange(W.shape[0]):
        g = np.zeros(d)
        tmp = np.empty(d)
        v = 0.0
        for i in range(n):
            v += sample_value(W[p], X[i])
            sample_grad(W[p], X[i], tmp)
            for k in range(d):
                g[k] += tmp[k]
        value[p] = v / n
        for k in range(d):
            grad[p, k] = g[k] / n


@njit(cache=True, parallel=True)
def batch_grad_many(W, X, idx, grad):
    b = idx.shape[1]
    d = W.shape[1]
    for p in prange(W.shape[0]):
        g = np.zeros(d)
        tmp = np.empty(d)
        for j in range(b):
            sample_grad(W[p], X[idx[p, j]], tmp)
            for k in range(d):
                g[k] += tmp[k]
        for k in range(d):
            grad[p, k] = g[k] / b


@njit(cache=True, parallel=True)
def sample_grads_many(W, X, idx, out):
    for p in prange(W.shape[0]):
        for j in range(idx.shape[1]):
            sample_grad(W[p], X[idx[p, j]], out[p, j])


@njit(cache=True, parallel=True)
def full_hessian_many(W, X, out):
    n = X.shape[0]
    d = W.shape[1]
    for p in prange(W.shape[0]):
        h = np.zeros((d, d))
        tmp = np.empty((d, d))
        for i in range(n):
            sample_hessian(W[p], X[i], tmp)
            for a in range(d):
                for c in range(d):
                    h[a, c] += tmp[a, c]
        for a in range(d):
            for c in range(d):
                out[p, a, c] = h[a, c] / n


@njit(cache=True, parallel=True)
def covariance_many(W, X, out):
    n = X.shape[0]
    d = W.shape[1]
    for p in prange(W.shape[0]):
        mean = np.zeros(d)
        tmp = np.empty(d)
        for i in range(n):
            sample_grad(W[p], X[i], tmp)
            for k in range(d):
                mean[k] += tmp[k]
        for k in range(d):
            mean[k] /= n
        cov = np.zeros((d, d))
        for i in range(n):
            sample_grad(W[p], X[i], tmp)
            for k in range(d):
                tmp[k] -= mean[k]
            for a in range(d):
                for c in range(d):
                    cov[a, c] += tmp[a] * tmp[c]
        for a in range(d):
            for c in range(d):
                out[p, a, c] = cov[a, c] / n
"""


def _data_columns(data: dict) -> tuple[list[str], np.ndarray]:
    """Flatten ``data`` into column names and an ``(n, m)`` matrix.

    A 1-D array ``data[name]`` binds the symbol ``name``; a 2-D array of width
    ``k`` binds ``name0, ..., name{k-1}``.
    """
    if not data:
        raise ShapeError("FiniteSumLoss needs at least one data array")
    lengths = {name: np.shape(a)[0] if np.ndim(a) else None for name, a in data.items()}
    if None in lengths.values() or len(set(lengths.values())) != 1:
        raise ShapeError(f"data arrays must share their first axis (samples), got lengths {lengths}")
    names, columns = [], []
    for name, a in data.items():
        a = np.asarray(a, dtype=np.float64)
        bad = ~np.isfinite(a)
        if bad.any():
            raise NonFiniteError(f"data {name!r} has {int(bad.sum())} non-finite entries, "
                                 f"first at row {int(np.argwhere(bad)[0][0])}")
        if a.ndim == 1:
            names.append(name)
            columns.append(a)
        elif a.ndim == 2:
            names += [f"{name}{j}" for j in range(a.shape[1])]
            columns += list(a.T)
        else:
            raise ShapeError(f"data {name!r} must be 1-D or 2-D, got shape {a.shape}")
    return names, np.ascontiguousarray(np.stack(columns, axis=1))


class FiniteSumLoss(BaseLoss):
    r"""Finite-sum loss :math:`C(w) = \frac1n \sum_{i=1}^n l(w; x_i)`.

    Parameters
    ----------
    expr : str or sympy.Expr
        Per-sample loss :math:`l(w; x)`, e.g. ``"0.5*(a*x - y)**2"``.
    params : sequence of str
        The trained parameters ``w`` (the variables of the dynamics), in order.
    data : dict of str -> array
        One row per sample. A 1-D array binds the symbol of its name; a 2-D
        array ``x`` of width ``k`` binds ``x0, ..., x{k-1}``.
    **constants : float
        Values of the remaining symbols (e.g. a weight decay).
    """

    kind = "finite_sum"
    per_sample_noise = True

    def __init__(self, expr, params, data: dict, **constants):
        expr = parse(expr)
        params = [params] if isinstance(params, str) else list(params)
        self.variables = tuple(symbol(p) for p in params)
        columns, self.data_matrix = _data_columns(data)
        self.data_symbols = tuple(symbol(c) for c in columns)
        present = {s.name for s in expr.free_symbols}
        clash = sorted(set(params) & set(columns))
        if clash:
            raise SymbolError(f"{', '.join(clash)} named both as parameter and as data")
        unused = sorted(set(columns) - present)
        if unused:
            raise SymbolError(f"data {', '.join(unused)} do not appear in the per-sample loss {expr}")
        unbound = sorted(present - set(params) - set(columns) - set(constants))
        if unbound:
            raise SymbolError(f"unbound symbol(s) {', '.join(unbound)} in the per-sample loss {expr}: "
                              "name them in params, give them as data, or bind them by keyword")
        extra = sorted(set(constants) - present)
        if extra:
            raise SymbolError(f"constant(s) {', '.join(extra)} do not appear in the per-sample loss {expr}")
        for k, v in constants.items():
            if not np.isfinite(float(v)):
                raise NonFiniteError(f"constant {k}={v} is not finite")
        self.expr = expr.xreplace({symbol(k): sympy.Float(v) for k, v in constants.items()})
        self.data = {k: np.asarray(v, dtype=np.float64) for k, v in data.items()}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variables)

    @property
    def dim(self) -> int:
        return len(self.variables)

    @property
    def n_samples(self) -> int:
        return self.data_matrix.shape[0]

    def __repr__(self):
        return f"FiniteSumLoss({str(self.expr)!r}, params={self.names}, n={self.n_samples})"

    def __getstate__(self):
        # compiled kernel modules do not pickle; they are re-imported from the disk cache
        return {k: v for k, v in self.__dict__.items() if k not in ("kernels", "_third_kernels")}

    @cached_property
    def kernels(self):
        """Generated Numba module: per-sample ``sample_value/grad/hessian`` and batch kernels."""
        d = self.dim
        grad = [sympy.diff(self.expr, v) for v in self.variables]
        hess = [sympy.diff(grad[i], v) for i in range(d) for v in self.variables]
        inputs = codegen.Inputs((("w", self.variables), ("x", self.data_symbols)))
        return codegen.numba_module(
            {"sample_value": [self.expr], "sample_grad": grad, "sample_hessian": hess},
            dict.fromkeys(("sample_value", "sample_grad", "sample_hessian"), inputs),
            {"sample_value": (), "sample_grad": (d,), "sample_hessian": (d, d)},
            extra=_KERNELS)

    def _points(self, W):
        W = check_points(W, self.dim, self.names)
        return W.shape[:-1], W.reshape(-1, self.dim)

    def _full(self, W):
        lead, flat = self._points(W)
        value = np.empty(flat.shape[0])
        grad = np.empty_like(flat)
        launch(self.kernels.full_many, flat, self.data_matrix, value, grad)
        return value.reshape(lead), grad.reshape(lead + (self.dim,))

    def value(self, W, t: float = 0.0) -> np.ndarray:
        r"""Full loss :math:`C(w)`, shape ``(...)`` for ``W`` of shape ``(..., dim)``."""
        return self._full(W)[0]

    def grad(self, W, t: float = 0.0) -> np.ndarray:
        r"""Full gradient :math:`\nabla C(w)`, shape ``(..., dim)``."""
        return self._full(W)[1]

    def hessian(self, W, t: float = 0.0) -> np.ndarray:
        r"""Full Hessian :math:`\nabla^2 C(w)`, shape ``(..., dim, dim)``."""
        lead, flat = self._points(W)
        out = np.empty((flat.shape[0], self.dim, self.dim))
        launch(self.kernels.full_hessian_many, flat, self.data_matrix, out)
        return out.reshape(lead + (self.dim, self.dim))

    def _indices(self, idx, n_points):
        idx = np.asarray(idx)
        if not np.issubdtype(idx.dtype, np.integer):
            raise ShapeError(f"sample indices must be integers, got dtype {idx.dtype}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_samples):
            raise ShapeError(f"sample indices must lie in [0, {self.n_samples}), "
                             f"got range [{idx.min()}, {idx.max()}]")
        if idx.ndim == 1:
            idx = np.broadcast_to(idx, (n_points, idx.shape[0]))
        if idx.ndim != 2 or idx.shape[0] != n_points:
            raise ShapeError(f"indices must have shape (batch,) or ({n_points}, batch), got {idx.shape}")
        return np.ascontiguousarray(idx, dtype=np.int64)

    def minibatch_grad(self, W, idx) -> np.ndarray:
        r"""Minibatch gradient :math:`g_B = \frac1B \sum_{i \in B} \nabla l_i(w)`.

        ``idx``: shape ``(B,)`` (one batch for every point) or ``(n_points, B)``
        with ``n_points`` the number of points in ``W`` (one batch each).
        """
        lead, flat = self._points(W)
        idx = self._indices(idx, flat.shape[0])
        out = np.empty_like(flat)
        launch(self.kernels.batch_grad_many, flat, self.data_matrix, idx, out)
        return out.reshape(lead + (self.dim,))

    def per_sample_grad(self, W, idx=None) -> np.ndarray:
        r"""Per-sample gradients :math:`\nabla l_i(w)`, shape ``(..., n_idx, dim)``."""
        lead, flat = self._points(W)
        idx = self._indices(np.arange(self.n_samples) if idx is None else idx, flat.shape[0])
        out = np.empty((flat.shape[0], idx.shape[1], self.dim))
        launch(self.kernels.sample_grads_many, flat, self.data_matrix, idx, out)
        return out.reshape(lead + (idx.shape[1], self.dim))

    def noise_covariance(self, W, t: float = 0.0) -> np.ndarray:
        r"""Per-sample gradient covariance :math:`\Sigma_1(w)`, shape ``(..., dim, dim)``."""
        lead, flat = self._points(W)
        out = np.empty((flat.shape[0], self.dim, self.dim))
        launch(self.kernels.covariance_many, flat, self.data_matrix, out)
        return out.reshape(lead + (self.dim, self.dim))

    def noise_covariance_at(self, W, t: float = 0.0) -> np.ndarray:
        r""":math:`\Sigma_1(w)` (the loss contract's name for :meth:`noise_covariance`)."""
        return self.noise_covariance(W, t)

    # --- symbolic means -----------------------------------------------------------

    def mean_expr(self, rows=None) -> sympy.Expr:
        r"""Symbolic :math:`\frac1{|S|}\sum_{i \in S} l(w; x_i)` over the rows ``S`` (default all).

        Exact and compact when ``l`` is polynomial in the data (moments of the
        data multiply the monomials); otherwise an explicit sum, allowed for at
        most 2000 rows.
        """
        X = self.data_matrix if rows is None else self.data_matrix[np.asarray(rows)]
        try:
            poly = sympy.Poly(self.expr, *self.data_symbols)
        except sympy.PolynomialError:
            poly = None
        if poly is not None and all(c.free_symbols.isdisjoint(self.data_symbols)
                                    for c in poly.coeffs()):
            total = sympy.S.Zero
            for monom, coeff in poly.terms():
                moment = float(np.mean(np.prod(X ** np.array(monom, dtype=float), axis=1)))
                total += coeff * sympy.Float(moment)
            return total
        if X.shape[0] > 2000:
            raise ConfigError(f"the per-sample loss is not polynomial in the data, and a symbolic sum "
                             f"over {X.shape[0]} samples is too large (at most 2000)")
        terms = [self.expr.xreplace(dict(zip(self.data_symbols, map(sympy.Float, row)))) for row in X]
        return sympy.Add(*terms) / X.shape[0]

    def as_loss(self) -> Loss:
        """The full loss :math:`C(w)` as a symbolic :class:`Loss`."""
        return Loss(self.mean_expr(), vars=self.variables)

    def fixed_batches(self, batch_size: int) -> list[np.ndarray]:
        """Consecutive minibatches ``[0, B), [B, 2B), ...`` (``n`` must be a multiple of ``B``)."""
        if self.n_samples % batch_size:
            raise ShapeError(f"n = {self.n_samples} samples do not split into batches of {batch_size}")
        return list(np.arange(self.n_samples).reshape(-1, batch_size))

    def modified_sgd(self, lr: float, batch_size: int) -> Loss:
        r"""Modified loss of SGD over the ``m = n / B`` fixed consecutive minibatches.

        :math:`\tilde C_{SGD} = C + \frac{lr}{4m} \sum_{k=1}^m |\nabla C_k|^2`
        (Smith, Dherin, Barrett & De 2021), with :math:`C_k` the mean loss of
        batch ``k``.
        """
        batches = self.fixed_batches(batch_size)
        penalty = sympy.S.Zero
        for rows in batches:
            ck = self.mean_expr(rows)
            penalty += sum(sympy.diff(ck, v) ** 2 for v in self.variables)
        expr = self.mean_expr() + sympy.Float(lr) / (4 * len(batches)) * penalty
        return Loss(expr, vars=self.variables)
