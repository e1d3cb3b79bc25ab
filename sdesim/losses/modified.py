r"""Backward error analysis: the modified vector field of gradient descent.

GD is explicit Euler with step ``h = lr`` on :math:`w' = f(w) = -\nabla C`. Its
modified field :math:`\tilde f = f + h f_2 + h^2 f_3 + \dots` is chosen so that
the exact time-``h`` flow of :math:`\tilde f` equals one GD step,
:math:`\varphi_h(w) = w + h f(w)` (Hairer, Lubich & Wanner, ch. IX).

Recursion. Expanding the flow in Lie derivatives,
:math:`\varphi_h = \sum_k \frac{h^k}{k!} L_{\tilde f}^k[\mathrm{id}]` with
:math:`L_g[G] = G' g`, the coefficient of :math:`h^{j+1}` computed with
:math:`\tilde f_j = f + \dots + h^{j-1} f_j` is :math:`c_{j+1}`; matching
:math:`w + h f` gives :math:`f_{j+1} = -c_{j+1}`. This yields
:math:`f_2 = -\tfrac12 f'f` and :math:`f_3 = \tfrac1{12} f''(f,f) + \tfrac13 f'f'f`.
"""

from __future__ import annotations

from functools import cached_property, lru_cache
from math import factorial

import numpy as np
import sympy

from sdesim import codegen
from sdesim.losses.symbolic import check_points
from sdesim.errors import ConfigError

LR = sympy.Symbol("_lr", real=True)


def _jvp(G, F, variables):
    """Directional derivative :math:`G'(w) F(w)` of the vector field ``G`` along ``F``."""
    return tuple(sum(sympy.diff(g, v) * f for v, f in zip(variables, F)) for g in G)


def _lie(G_series, F_series, variables, max_order):
    """:math:`L_F G` for power series in ``h`` (lists of coefficient fields), truncated."""
    dim = len(variables)
    out = []
    for n in range(max_order + 1):
        acc = [sympy.S.Zero] * dim
        for a in range(min(n, len(G_series) - 1) + 1):
            b = n - a
            if b < len(F_series):
                acc = [x + y for x, y in zip(acc, _jvp(G_series[a], F_series[b], variables))]
        out.append(tuple(acc))
    return out


@lru_cache(maxsize=64)
def bea_terms(expr: sympy.Expr, variables: tuple, order: int) -> tuple:
    r"""Terms :math:`(f_1 = -\nabla C, f_2, \dots, f_{order+1})` of GD's modified field."""
    f = tuple(-sympy.diff(expr, v) for v in variables)
    terms = [f]
    for j in range(1, order + 1):
        # coefficient of h^(j+1) in sum_k h^k/k! L_F^k[id], with F = terms (f_{j+1} = 0)
        series = [tuple(terms[b]) for b in range(len(terms))]   # L_F[id] = F
        coeff = list(series[j]) if j < len(series) else [sympy.S.Zero] * len(variables)
        current = series
        for k in range(2, j + 2):
            current = _lie(current, terms, variables, j + 1 - k)
            c = current[j + 1 - k]
            coeff = [x + y / factorial(k) for x, y in zip(coeff, c)]
        terms.append(tuple(-c for c in coeff))
    return tuple(terms)


class ModifiedField:
    r"""GD's modified vector field :math:`\tilde f = \sum_{i=0}^{p} lr^i f_{i+1}`.

    ``order = p`` correction terms; the flow of :math:`\tilde f` tracks GD with
    step ``lr`` to :math:`O(lr^{p+1})` over a fixed time ``t = k * lr``.
    ``order = 0`` is gradient flow.
    """

    def __init__(self, loss, lr: float, order: int):
        if int(order) != order or order < 0:
            raise ConfigError(f"order must be a non-negative integer, got {order}")
        self.loss = loss
        self.lr = float(lr)
        self.order = int(order)

    def __getstate__(self):
        # compiled kernel modules do not pickle; they are re-imported from the disk cache
        return {k: v for k, v in self.__dict__.items() if k not in ("kernels", "_third_kernels")}

    @cached_property
    def terms(self) -> tuple:
        """Symbolic terms :math:`f_1, \\dots, f_{p+1}` (each a tuple over variables)."""
        return bea_terms(self.loss.expr, self.loss.variables, self.order)

    @cached_property
    def components(self) -> tuple:
        """Components of :math:`\\tilde f` with ``lr`` as the symbol ``_lr``."""
        return tuple(sum(LR**i * term[d] for i, term in enumerate(self.terms))
                     for d in range(self.loss.dim))

    @cached_property
    def kernels(self):
        """Generated Numba module with ``field(w, *time_params, _lr, out)`` and ``field_many``."""
        inputs = codegen.Inputs((("w", self.loss.variables),), self.loss.time_parameters + (LR,))
        return codegen.numba_module({"field": list(self.components)}, {"field": inputs},
                                    {"field": (self.loss.dim,)})

    def __call__(self, W, t: float = 0.0) -> np.ndarray:
        r""":math:`\tilde f(w)` for ``W`` of shape ``(..., dim)``."""
        W = check_points(W, self.loss.dim, self.loss.names)
        flat = W.reshape(-1, self.loss.dim)
        out = np.empty_like(flat)
        kernel = codegen.batch_kernel(self.kernels, "field", flat.shape[0])
        kernel(flat, *self.loss.parameter_values(t), self.lr, out)
        return out.reshape(W.shape)
