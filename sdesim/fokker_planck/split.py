"""Directional splitting: one backward-Euler solve per lattice direction.

The generator is a sum over link directions, ``L = sum_k L_k``, and each
``L_k`` couples cells only along straight chains ``c, c + delta_k, c + 2 delta_k, ...``,
so ``I - dt L_k`` is tridiagonal once the cells are ordered chain by chain; in the
grid's own flat order it has the diagonals ``0`` and ``+- s`` only (``s`` the
link's flat stride). A step applies ``(I - dt L_K)^{-1} ... (I - dt L_1)^{-1}``
(the order reversed every other step), each an ``O(N)`` solve with an LU
factorised once: a Thomas algorithm with stride ``s`` in place (numba,
`_strided`; no permutation, no pivoting, stable because ``I - dt L_k`` is
column diagonally dominant) when all rates are non-negative, else LAPACK
``gttrf``/``gttrs`` in chain order. Every factor is a Markov matrix: mass and
positivity are kept for any ``dt``, and with ``b = -grad C``, ``D = T I`` every
link is in detailed balance with the Gibbs density, which every factor keeps
fixed (so ``KL`` to it decreases). The splitting error is first order in ``dt``
(commutators ``[L_j, L_k]``), so away from detailed balance the stationary
state of the split scheme differs from that of ``L`` by ``O(dt)``.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import lapack


def chain_order(shape, offset):
    """Permutation of flat C-order cells listing the chains along ``offset`` one after another."""
    idx = np.indices(shape).reshape(len(shape), -1)
    axes = [i for i, o in enumerate(offset) if o]
    i = axes[0]
    keys = [idx[a] for a in range(len(shape)) if a not in axes]
    if len(axes) == 2:
        j = axes[1]
        keys.append(idx[j] - offset[j] * idx[i])
    return np.lexsort([idx[i]] + keys[::-1])


class SplitStepper:
    """Backward-Euler factors ``(I - dt L_k)`` for every link direction, factorised.

    ``strided=False`` forces the LAPACK path (chain order, partial pivoting), which
    is also taken when some rate is negative (cross terms beyond what the grid
    carries, see `PositivityWarning`).
    """

    def __init__(self, operator, dt, scale=1.0, strided=True):
        n = operator.grid.size
        self.factors = []
        self.strided = None
        rates = [link.rates(scale) for link in operator.links]
        if strided and all(np.all(fwd >= 0) and np.all(bwd >= 0) for fwd, bwd in rates):
            from . import _strided

            self.strided = _strided
            for link, (fwd, bwd) in zip(operator.links, rates):
                s = link.stride
                out = fwd.copy()
                out[s:] += bwd[: n - s]
                lower = np.zeros(n)
                lower[s:] = -dt * fwd[: n - s]
                upper = -dt * bwd
                m, inv = _strided.factor(1.0 + dt * out, lower, upper, s)
                self.factors.append((s, m, inv, upper))
            return
        for link, (fwd, bwd) in zip(operator.links, rates):
            perm = chain_order(operator.grid.shape, link.offset)
            bwd_in = np.zeros(n)
            bwd_in[link.stride:] = bwd[: n - link.stride]
            diag = 1.0 + dt * (fwd + bwd_in)[perm]
            lower = -dt * fwd[perm][:-1]     # zero where a chain ends (invalid link)
            upper = -dt * bwd[perm][:-1]
            factor = lapack.dgttrf(lower, diag, upper)
            if factor[-1] != 0:
                raise np.linalg.LinAlgError("tridiagonal factorisation failed")
            self.factors.append((None if np.array_equal(perm, np.arange(n)) else perm, factor[:-1]))

    def step(self, rho, reverse=False):
        """One split step from the flat density ``rho``."""
        rho = np.array(rho, dtype=float)
        if self.strided is not None:
            for s, m, inv, upper in (self.factors[::-1] if reverse else self.factors):
                self.strided.solve(m, inv, upper, s, rho)
            return rho
        for perm, (dl, d, du, du2, ipiv) in (self.factors[::-1] if reverse else self.factors):
            if perm is None:
                rho = lapack.dgttrs(dl, d, du, du2, ipiv, rho)[0]
            else:
                rho[perm] = lapack.dgttrs(dl, d, du, du2, ipiv, rho[perm])[0]
        return rho
