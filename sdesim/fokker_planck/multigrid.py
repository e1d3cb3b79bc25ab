"""Geometric multigrid on the cell-centred tensor grid, for the scaled steady-state system.

Coarse cell ``J`` along an axis holds the fine cells ``2J`` and ``2J + 1`` (the last one
alone when ``n`` is odd) and sits at their mean centre. The 1-D prolongation
interpolates linearly between the two nearest coarse centres (exact for linear
functions in the interior), constant beyond the outermost coarse centres (the
zero-flux walls); on the grid it is the Kronecker product over the axes,
``P = P_0 \\otimes P_1 (\\otimes P_2)`` (C order).

Under detailed balance the system ``S = G^{-1/2} A G^{1/2}`` (`steady.pinned_symmetrised`)
annihilates ``w = sqrt(g)`` away from the pin row (a non-equilibrium state perturbs that),
and ``w`` varies by orders of magnitude per cell in the tails, which linear interpolation
cannot follow. The prolongation is therefore taken in the variable ``v / w``:

.. math:: P_w = W P W_c^{-1}, \\qquad w_c = \\frac{P^T w}{P^T 1}, \\qquad
          S_c = P_w^T S P_w,

which maps ``w_c`` onto ``w`` exactly (``P 1 = 1``): Galerkin coarsening of
``-L G`` (symmetric under detailed balance, the weighted Laplacian
``-\\nabla\\cdot(g \\nabla u)`` of ``u = rho / g``) with linear interpolation, in the
scaling of ``S``. Levels halve every axis down to `COARSE_CELLS` cells, solved by
LU; the smoother is one symmetric Gauss-Seidel sweep (forward, then backward) after the
coarse correction and none before (`pyamg`'s kernels and V-cycle): at 1000^2 in 2D and 64^3
in 3D that takes 5 and 6 BiCGSTAB steps where one forward sweep before and one backward
after take 6 and 9, at the same cost per V-cycle. The same hierarchy serves 2D and 3D
(Galerkin coarse stencils: 25 and 125 points): at 128^3 it takes 14 s where Ruge-Stueben
on ``A`` takes 34 s and on ``S`` (64^3) does not converge.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .linsolve import SolverError

COARSE_CELLS = 4000
MAXITER = 40        # BiCGSTAB steps; converging solves take 5-10 (`steady.solve` falls back otherwise)


def interpolation_1d(n):
    """Linear interpolation from the ``(n + 1) // 2`` coarse to the ``n`` fine cell centres: per fine
    cell the two coarse columns ``j, j + 1`` (n, 2) and their weights (n, 2)."""
    nc = (n + 1) // 2
    fine = np.arange(n, dtype=float)
    centre = 0.5 * (np.arange(0, n, 2) + np.minimum(np.arange(1, n + 1, 2), n - 1))
    j = np.clip(np.searchsorted(centre, fine, side="right") - 1, 0, nc - 2)
    w = np.clip((fine - centre[j]) / (centre[j + 1] - centre[j]), 0.0, 1.0)
    return np.stack([j, j + 1], axis=1), np.stack([1.0 - w, w], axis=1)


def prolongation(shape):
    """``P = P_0 \\otimes P_1 (\\otimes P_2)`` of `interpolation_1d` (CSR, ``2^dim`` entries a row,
    built by broadcasting: several times faster than `scipy.sparse.kron`), and the coarse shape."""
    coarse = tuple((n + 1) // 2 for n in shape)
    m, k = int(np.prod(shape)), 2 ** len(shape)
    index = np.int32 if m * k < 2 ** 31 else np.int64
    cols, weights = np.zeros((1, 1), dtype=index), np.ones((1, 1))
    for n, nc in zip(shape, coarse):
        c, w = interpolation_1d(n)
        cols = (cols[:, None, :, None] * nc + c.astype(index)[None, :, None, :]).reshape(-1, 2 * cols.shape[1])
        weights = (weights[:, None, :, None] * w[None, :, None, :]).reshape(-1, 2 * weights.shape[1])
    P = sp.csr_matrix((weights.ravel(), cols.ravel(), np.arange(0, m * k + 1, k, dtype=index)),
                      shape=(m, int(np.prod(coarse))))
    P.eliminate_zeros()
    return P, coarse


def hierarchy(S, shape, w):
    """Levels ``(A, P_w, P_w^T)`` (the coarsest ``(A, None, None)``) from the fine ``S`` on ``shape``
    with near-null vector ``w``, down to `COARSE_CELLS` cells."""
    levels = []
    A, w = sp.csr_matrix(S), np.asarray(w, dtype=float)
    while A.shape[0] > COARSE_CELLS and min(shape) >= 3:
        P, shape = prolongation(shape)
        wc = (P.T @ w) / (P.T @ np.ones(P.shape[0]))
        P.data *= w[np.repeat(np.arange(P.shape[0]), np.diff(P.indptr))] / wc[P.indices]
        Pw, Rw = P, P.T.tocsr()
        levels.append((A, Pw, Rw))
        A, w = sp.csr_matrix((Rw @ A) @ Pw), wc          # in this order about 40% cheaper
    levels.append((A, None, None))
    return levels


def solver(S, shape, w):
    """The geometric hierarchy as a `pyamg.multilevel.MultilevelSolver`."""
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
    change_smoothers(ml, None, ("gauss_seidel", {"sweep": "symmetric"}))
    return ml


def available():
    """Whether pyamg (the smoother kernels and V-cycle) is installed."""
    return importlib.util.find_spec("pyamg") is not None


class Geometric:
    """BiCGSTAB on ``S`` preconditioned by one V-cycle of `solver`; absolute residual ``tol``."""

    def __init__(self, S, shape, w, tol):
        self.S, self.tol = sp.csr_matrix(S), tol
        self.M = solver(self.S, shape, w).aspreconditioner()

    def solve(self, b, x0):
        x, _ = spla.bicgstab(self.S, b, x0=x0, M=self.M, rtol=0.0, atol=self.tol, maxiter=MAXITER)
        res = np.linalg.norm(b - self.S @ x)
        if not res <= 10 * self.tol:          # also catches NaN
            raise SolverError(f"geometric multigrid stopped at residual {res:.2e} (tolerance {self.tol:.1e})")
        return x
