"""Sparse linear solvers with a factorisation (or preconditioner) built once.

``direct``: SuperLU (`scipy.sparse.linalg.splu`), or a tridiagonal LU on 1D grids. ``iterative``: BiCGSTAB
preconditioned by algebraic multigrid (`pyamg`, classical Ruge-Stueben, which
suits the M-matrices of the scheme; one forward Gauss-Seidel sweep before and one
backward sweep after the coarse correction) when pyamg is installed, otherwise by an
incomplete LU factorisation. ``auto`` picks ``direct`` up to
`DIRECT_MAX_CELLS` cells (2D) or `DIRECT_MAX_CELLS_3D` (3D, where fill-in
grows faster).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.linalg import lapack

from sdesim.errors import ConfigError, SdesimError

DIRECT_MAX_CELLS = 500_000
DIRECT_MAX_CELLS_3D = 2_000
METHODS = ("auto", "direct", "iterative")


class SolverError(SdesimError, RuntimeError):
    """An iterative solve did not reach its tolerance."""


def choose(method, n, dim):
    if method not in METHODS:
        raise ConfigError(f"solver must be one of {METHODS}; got {method!r}")
    if method != "auto":
        return method
    return "direct" if n <= (DIRECT_MAX_CELLS if dim < 3 else DIRECT_MAX_CELLS_3D) else "iterative"


class Direct:
    """LU factorisation of ``A``; ``solve(b)`` reuses it."""

    def __init__(self, A):
        self.lu = spla.splu(sp.csc_matrix(A), permc_spec="MMD_AT_PLUS_A")

    def solve(self, b, x0=None):
        return self.lu.solve(np.asarray(b, dtype=float))


class Tridiagonal:
    """LU of a tridiagonal ``A`` (1D grids) by LAPACK ``gttrf``; ``solve`` by ``gttrs``."""

    def __init__(self, A):
        *self.factor, info = lapack.dgttrf(A.diagonal(-1), A.diagonal(0), A.diagonal(1))
        if info != 0:
            raise np.linalg.LinAlgError("singular tridiagonal system")

    def solve(self, b, x0=None):
        return lapack.dgttrs(*self.factor, np.asarray(b, dtype=float))[0]


class Iterative:
    """BiCGSTAB on ``A`` preconditioned by one AMG V-cycle (or ILU); relative tolerance ``tol``."""

    def __init__(self, A, tol=1e-10):
        self.A = sp.csr_matrix(A)
        self.tol = tol
        if importlib.util.find_spec("pyamg") is not None:
            import pyamg
            self.M = pyamg.ruge_stuben_solver(self.A, max_coarse=500, coarse_solver="splu",
                                              presmoother=("gauss_seidel", {"sweep": "forward"}),
                                              postsmoother=("gauss_seidel", {"sweep": "backward"}),
                                              ).aspreconditioner()
        else:
            ilu = spla.spilu(sp.csc_matrix(A), drop_tol=1e-5, fill_factor=10)
            self.M = spla.LinearOperator(A.shape, ilu.solve)

    def solve(self, b, x0=None):
        b = np.asarray(b, dtype=float)
        x, _ = spla.bicgstab(self.A, b, x0=x0, M=self.M, rtol=self.tol, atol=0.0, maxiter=200)
        res = np.linalg.norm(b - self.A @ x) / max(np.linalg.norm(b), np.finfo(float).tiny)
        if not res <= 10 * self.tol:          # also catches NaN
            raise SolverError(f"iterative solver stopped at relative residual {res:.2e} "
                              f"(tolerance {self.tol:.1e}); use solver='direct' or a smaller dt")
        return x


def factorize(A, method, dim, tol=1e-10):
    """A solver object for ``A`` (``method`` as in `choose`; 1D direct solves are tridiagonal)."""
    if choose(method, A.shape[0], dim) == "iterative":
        return Iterative(A, tol)
    return Tridiagonal(A) if dim == 1 else Direct(A)
