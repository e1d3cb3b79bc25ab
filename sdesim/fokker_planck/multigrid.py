"""Geometric multigrid on the cell-centred tensor grid, for the scaled steady-state system.

Coarse cell ``J`` along an axis holds the fine cells ``2J`` and ``2J + 1`` (the last one
alone when ``n`` is odd) and sits at their mean centre. The 1-D prolongation
interpolates linearly between the two nearest coarse centres (exact for linear
functions in the interior), constant beyond the outermost coarse centres (the
zero-flux walls); on the grid it is the Kronecker product over the axes,
``P = P_0 \\otimes P_1 (\\otimes P_2)`` (C order).

The system ``S = G^{-1/2} A G^{1/2}`` (`steady.pinned_symmetrised`) annihilates
``w = sqrt(g)`` away from detailed balance's perturbation, and ``w`` varies by orders
of magnitude per cell in the tails, which linear interpolation cannot follow. The
prolongation is therefore taken in the variable ``v / w``:

.. math:: P_w = W P W_c^{-1}, \\qquad w_c = \\frac{P^T w}{P^T 1}, \\qquad
          S_c = P_w^T S P_w,

which maps ``w_c`` onto ``w`` exactly (``P 1 = 1``): Galerkin coarsening of
``-L G`` (symmetric under detailed balance, the weighted Laplacian
``-\\nabla\\cdot(g \\nabla u)`` of ``u = rho / g``) with linear interpolation, in the
scaling of ``S``. Levels halve every axis down to `COARSE_CELLS` cells, solved by
LU; the smoother is one forward Gauss-Seidel sweep before and one backward sweep after
the coarse correction (`pyamg`'s kernels and V-cycle).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

COARSE_CELLS = 4000


def interpolation_1d(n):
    """Linear interpolation ``(n, (n + 1) // 2)`` (CSR) from the coarse to the fine cell centres."""
    nc = (n + 1) // 2
    fine = np.arange(n, dtype=float)
    centre = 0.5 * (np.arange(0, n, 2) + np.minimum(np.arange(1, n + 1, 2), n - 1))
    j = np.clip(np.searchsorted(centre, fine, side="right") - 1, 0, nc - 2)
    w = np.clip((fine - centre[j]) / (centre[j + 1] - centre[j]), 0.0, 1.0)
    rows = np.concatenate([np.arange(n), np.arange(n)])
    P = sp.csr_matrix((np.concatenate([1.0 - w, w]), (rows, np.concatenate([j, j + 1]))), shape=(n, nc))
    P.eliminate_zeros()
    return P


def aggregation_1d(n):
    """Piecewise-constant ``(n, (n + 1) // 2)`` (CSR): fine cell ``i`` to coarse cell ``i // 2``."""
    return sp.csr_matrix((np.ones(n), (np.arange(n), np.arange(n) // 2)), shape=(n, (n + 1) // 2))


def tensor(factors):
    P = factors[0]
    for f in factors[1:]:
        P = sp.kron(P, f, format="csr")
    return P


def prolongation(shape):
    """``P = kron`` of `interpolation_1d` over the axes, the aggregation ``Q`` likewise, and the coarse shape."""
    return (tensor([interpolation_1d(n) for n in shape]), tensor([aggregation_1d(n) for n in shape]),
            tuple((n + 1) // 2 for n in shape))


def hierarchy(S, shape, w):
    """Levels ``(A, P)`` from the fine ``S`` on ``shape`` with near-null vector ``w``, down to `COARSE_CELLS`."""
    levels = []
    A, w = sp.csr_matrix(S), np.asarray(w, dtype=float)
    while A.shape[0] > COARSE_CELLS and min(shape) >= 3:
        P, Q, shape = prolongation(shape)
        wc = (Q.T @ w) / (Q.T @ np.ones(P.shape[0]))
        Pw = sp.csr_matrix(P.multiply(w[:, None]).multiply(1.0 / wc[None, :]))
        Rw = sp.csr_matrix(Pw.T)
        levels.append((A, Pw, Rw))
        A, w = sp.csr_matrix(Rw @ (A @ Pw)), wc
    levels.append((A, None, None))
    return levels


def preconditioner(S, shape, w):
    """One V-cycle of the geometric hierarchy as a `scipy.sparse.linalg.LinearOperator` (needs pyamg)."""
    from pyamg.multilevel import MultilevelSolver
    from pyamg.relaxation.smoothing import change_smoothers

    levels = []
    for A, P, R in hierarchy(S, shape, w):
        level = MultilevelSolver.Level()
        level.A = A
        if P is not None:
            level.P, level.R = P, R
        levels.append(level)
    ml = MultilevelSolver(levels, coarse_solver="splu")
    change_smoothers(ml, ("gauss_seidel", {"sweep": "forward"}), ("gauss_seidel", {"sweep": "backward"}))
    return ml.aspreconditioner()
