"""``Loss``: a symbolic loss ``C(w)`` with compiled value, gradient and Hessian."""

from __future__ import annotations

from functools import cached_property

import numpy as np
import sympy

from sdesim import codegen
from sdesim.errors import NonFiniteError, ShapeError, SymbolError
from sdesim.losses.base import BaseLoss
from sdesim.losses.parsing import parse, symbol


def check_points(W, dim: int, names=None, what: str = "W") -> np.ndarray:
    """Return ``W`` as a C-contiguous float64 array of shape ``(..., dim)``.

    Raises ``ShapeError`` on a wrong trailing dimension and ``NonFiniteError``
    on NaN or infinite entries, naming the first offending index.
    """
    W = np.ascontiguousarray(W, dtype=np.float64)
    if W.ndim == 0 or W.shape[-1] != dim:
        label = f" (variables {', '.join(names)})" if names else ""
        raise ShapeError(f"{what} must have trailing dimension {dim}{label}, got shape {W.shape}")
    if np.isfinite(W).all():        # fast path: one pass, no negated copy
        return W
    bad = ~np.isfinite(W)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise NonFiniteError(f"{what} has {int(bad.sum())} non-finite entries, first at index {first}")
    return W


class Loss(BaseLoss):
    r"""A loss :math:`C(w)` given by a sympy expression or a string.

    Parameters
    ----------
    expr : str or sympy.Expr
        Scalar expression, e.g. ``"(x**2 - 1)**2 + 2*y**2 + 0.5*x*y"``.
    vars : sequence of str or Symbol, optional
        The variables, in order. Default: every free symbol that is not a
        parameter, sorted by name.
    **params : float or callable
        Values of the remaining symbols (e.g. a tilt ``c=0.2``). A callable
        ``c(t)`` makes the parameter time-dependent (``t = k * lr``).

    Notes
    -----
    ``value``, ``grad``, ``hessian`` and ``third`` take ``W`` of shape
    ``(..., dim)`` and vectorise over the leading axes. They run Numba code
    generated from the expression and cached on disk by its hash
    (:mod:`sdesim.codegen`).
    """

    kind = "symbolic"

    def __init__(self, expr, vars=None, **params):
        expr = parse(expr)
        names = {s.name for s in expr.free_symbols}
        unknown = sorted(set(params) - names)
        if unknown:
            raise SymbolError(f"parameter(s) {', '.join(unknown)} do not appear in the loss {expr}")
        if vars is None:
            variables = sorted((s for s in expr.free_symbols if s.name not in params),
                               key=lambda s: s.name)
        else:
            variables = [symbol(v) for v in ([vars] if isinstance(vars, str) else vars)]
            clash = sorted(v.name for v in variables if v.name in params)
            if clash:
                raise SymbolError(f"{', '.join(clash)} given both as variable and as parameter")
            if len({v.name for v in variables}) != len(variables):
                raise SymbolError(f"repeated variable names in {[v.name for v in variables]}")
        unbound = sorted(names - {v.name for v in variables} - set(params))
        if unbound:
            raise SymbolError(
                f"unbound symbol(s) {', '.join(unbound)} in the loss {expr}: "
                f"bind them by keyword (Loss(..., {unbound[0]}=...)) or list them in vars")
        if not variables:
            raise SymbolError(f"the loss {expr} has no variables")
        constant = {symbol(k): sympy.Float(v) for k, v in params.items() if not callable(v)}
        for k, v in params.items():
            if not callable(v) and not np.isfinite(float(v)):
                raise NonFiniteError(f"parameter {k}={v} is not finite")
        self.expr = expr.xreplace(constant)
        self.variables = tuple(variables)
        self.parameters = dict(params)
        self.time_parameters = tuple(sorted((symbol(k) for k, v in params.items() if callable(v)),
                                            key=lambda s: s.name))

    # --- description -------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variables)

    @property
    def dim(self) -> int:
        return len(self.variables)

    def __repr__(self):
        return self._repr

    @cached_property
    def _repr(self) -> str:
        # printing a sympy expression takes milliseconds: once per loss (sweeps call it per point)
        return f"Loss({str(self.expr)!r}, vars={self.names})"

    def __getstate__(self):
        # compiled kernel modules do not pickle; they are re-imported from the disk cache
        return {k: v for k, v in self.__dict__.items() if k not in ("kernels", "_third_kernels")}

    def bind(self, **params) -> "Loss":
        """A new ``Loss`` with (some of) the time-dependent parameters given new values.

        Raises ``SymbolError`` for a name that is not a time-dependent parameter
        (numeric parameters are substituted at construction and cannot be re-bound).
        """
        free = {s.name for s in self.time_parameters}
        unknown = sorted(set(params) - free)
        if unknown:
            raise SymbolError(f"cannot bind {', '.join(unknown)}: not a time-dependent parameter of "
                              f"{self!r} (time-dependent parameters: {sorted(free)})")
        for k, v in params.items():
            if not callable(v) and not np.isfinite(float(v)):
                raise NonFiniteError(f"parameter {k}={v} is not finite")
        merged = {**self.parameters, **params}
        expr = self.expr.xreplace({symbol(k): sympy.Float(v) for k, v in params.items()
                                   if not callable(v) and symbol(k) in self.expr.free_symbols})
        return Loss(expr, vars=self.variables,
                    **{k: v for k, v in merged.items() if symbol(k) in expr.free_symbols})

    # --- symbolic derivatives -----------------------------------------------------
    @cached_property
    def gradient_exprs(self) -> tuple[sympy.Expr, ...]:
        """Components of :math:`\\nabla C` as sympy expressions."""
        return tuple(sympy.diff(self.expr, v) for v in self.variables)

    @cached_property
    def hessian_exprs(self) -> sympy.Matrix:
        """The Hessian :math:`\\nabla^2 C` as a sympy matrix."""
        g = self.gradient_exprs
        d = self.dim
        return sympy.Matrix(d, d, lambda i, j: sympy.diff(g[max(i, j)], self.variables[min(i, j)]))

    def modified(self, lr: float) -> "Loss":
        r"""First-order modified loss of GD, :math:`\tilde C = C + \frac{lr}{4}|\nabla C|^2`.

        Gradient flow on :math:`\tilde C` follows GD with step ``lr`` to
        :math:`O(lr^2)` (Barrett & Dherin's implicit gradient regulariser).
        """
        extra = sympy.Float(lr) / 4 * sum(g**2 for g in self.gradient_exprs)
        return Loss(self.expr + extra, vars=self.variables,
                    **{s.name: self.parameters[s.name] for s in self.time_parameters})

    def modified_field(self, lr: float, order: int):
        """GD's modified vector field with ``order`` correction terms (see :mod:`.modified`)."""
        from sdesim.losses.modified import ModifiedField
        return ModifiedField(self, lr, order)

    # --- compiled evaluation ------------------------------------------------------
    def _inputs(self, *arrays) -> codegen.Inputs:
        groups = [("w", self.variables)]
        for name in arrays:
            groups.append((name, tuple(sympy.Symbol(f"{name}_{i}", real=True) for i in range(self.dim))))
        return codegen.Inputs(tuple(groups), self.time_parameters)

    @cached_property
    def kernels(self):
        """Generated Numba module: ``value``, ``grad``, ``hessian`` and their ``*_many`` (parallel)
        and ``*_many_serial`` batch forms."""
        d = self.dim
        inputs = self._inputs()
        return codegen.numba_module(
            {"value": [self.expr], "grad": list(self.gradient_exprs),
             "hessian": list(self.hessian_exprs)},
            {"value": inputs, "grad": inputs, "hessian": inputs},
            {"value": (), "grad": (d,), "hessian": (d, d)})

    @cached_property
    def _third_kernels(self):
        inputs = self._inputs("u", "v")
        u = inputs.groups[1][1]
        v = inputs.groups[2][1]
        H = self.hessian_exprs
        comps = [sum(sympy.diff(H[i, j], self.variables[k]) * u[j] * v[k]
                     for j in range(self.dim) for k in range(self.dim)) for i in range(self.dim)]
        return codegen.numba_module({"third": comps}, {"third": inputs}, {"third": (self.dim,)})

    def cuda_source(self) -> str:
        """CUDA C source of ``value`` and ``grad`` (device functions and batch kernels)."""
        if self.time_parameters:
            raise SymbolError("CUDA source needs every parameter bound to a number")
        inputs = self._inputs()
        return codegen.cuda_source({"value": [self.expr], "grad": list(self.gradient_exprs)},
                                   {"value": inputs, "grad": inputs},
                                   {"value": (), "grad": (self.dim,)})

    def parameter_values(self, t: float = 0.0) -> tuple[float, ...]:
        """Values of the time-dependent parameters at time ``t``."""
        values = tuple(float(self.parameters[s.name](t)) for s in self.time_parameters)
        for s, v in zip(self.time_parameters, values):
            if not np.isfinite(v):
                raise NonFiniteError(f"time-dependent parameter {s.name}(t={t}) = {v} is not finite")
        return values

    def parameter_table(self, times) -> np.ndarray:
        """Values of the time-dependent parameters at many times, shape ``(len(times), n_params)``.

        Each callable is evaluated once on the whole array of times when it
        vectorises (``lambda t: 0.1 * np.sin(t)``), else time by time.
        """
        times = np.asarray(times, dtype=float)
        columns = []
        for s in self.time_parameters:
            f = self.parameters[s.name]
            try:
                col = np.broadcast_to(np.asarray(f(times), dtype=float), times.shape)
            except (TypeError, ValueError):
                col = np.array([float(f(t)) for t in times])
            bad = ~np.isfinite(col)
            if bad.any():
                t = times[np.argmax(bad)]
                raise NonFiniteError(f"time-dependent parameter {s.name}(t={t}) = {col[np.argmax(bad)]} is not finite")
            columns.append(col)
        return np.stack(columns, axis=1) if columns else np.zeros((times.size, 0))

    def _call(self, kernel, W, shape, t, *directions):
        arrays = [check_points(W, self.dim, self.names)]
        arrays += [check_points(D, self.dim, self.names, what="direction") for D in directions]
        arrays = np.broadcast_arrays(*arrays)
        lead = arrays[0].shape[:-1]
        flat = [np.ascontiguousarray(a.reshape(-1, self.dim)) for a in arrays]
        out = np.empty((flat[0].shape[0],) + shape)
        kernel = codegen.batch_kernel(*kernel, out.shape[0])
        kernel(*flat, *self.parameter_values(t), out)
        return out.reshape(lead + shape)

    def value(self, W, t: float = 0.0) -> np.ndarray:
        """:math:`C(w)` for ``W`` of shape ``(..., dim)``; returns shape ``(...)``."""
        return self._call((self.kernels, "value"), W, (), t)

    def grad(self, W, t: float = 0.0) -> np.ndarray:
        r""":math:`\nabla C(w)`, shape ``(..., dim)``."""
        return self._call((self.kernels, "grad"), W, (self.dim,), t)

    def hessian(self, W, t: float = 0.0) -> np.ndarray:
        r""":math:`\nabla^2 C(w)`, shape ``(..., dim, dim)``."""
        return self._call((self.kernels, "hessian"), W, (self.dim, self.dim), t)

    def third(self, W, U, V, t: float = 0.0) -> np.ndarray:
        r"""Third-derivative contraction :math:`\sum_{jk} \partial_{ijk} C\, u_j v_k`, shape ``(..., dim)``."""
        return self._call((self._third_kernels, "third"), W, (self.dim,), t, U, V)
