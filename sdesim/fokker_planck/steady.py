"""The steady state as a non-singular linear system, and its Gibbs symmetrisation.

``L rho = 0`` has a one-dimensional null space (mass). The equation at a pin cell
``p`` (the cell of lowest loss) is replaced by ``rho_p = 1``:

.. math:: A = P(-L) + e_p e_p^T, \\qquad A \\rho = e_p, \\qquad P = I - e_p e_p^T.

For the multigrid-preconditioned Krylov solve the system is scaled by the square
root of a reference density ``g`` (``exp(-C/T)``, ``T = tr(D)/dim``, with ``g_p = 1``):

.. math:: S = G^{-1/2} A\\, G^{1/2}, \\qquad S v = G^{-1/2} e_p = e_p, \\qquad \\rho = G^{1/2} v.

Under detailed balance with respect to ``g`` (``L_{c'c} g_c = L_{cc'} g_{c'}``) ``S``
is symmetric, and a non-equilibrium steady state is a small perturbation of that:
multigrid on ``S`` (geometric on the host, `multigrid`; Ruge-Stueben on the device and
as the fallback) needs a fraction of the BiCGSTAB iterations it needs on ``A``, whose
rows span the dynamic range of ``exp(-C/T)``. Since ``g <= 1`` the
residual of ``A`` is ``G^{1/2}`` times that of ``S``, so a relative residual reached
on ``S`` holds for ``A`` too (``||e_p|| = 1`` for both), in exact arithmetic. Far
from detailed balance on a coarse grid (``S`` then strongly non-symmetric,
``sqrt(g_j / g_i)`` large per link) the Krylov solve on ``S`` may fail, or meet its
tolerance while ``A``'s residual does not (rounding); `solve` checks the residual of
``A`` and otherwise solves ``A`` from ``g``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from . import multigrid
from .linsolve import SolverError


def pin_cell(potential):
    """The pin cell ``p``: the flat index of the lowest loss."""
    return int(np.argmin(potential))


def reference_density(potential, diffusion, dim):
    """``g = exp(-(C - C_p) / T)`` with ``T = tr(D) / dim`` (mean over cells), clipped at ``e^-700``."""
    C = np.asarray(potential, dtype=float).ravel()
    T = np.trace(diffusion, axis1=-2, axis2=-1).mean() / dim
    return np.exp(-np.minimum((C - C.min()) / T, 700.0))


def pinned_system(L, p):
    """``A = P(-L) + e_p e_p^T`` (CSR) and ``b = e_p``."""
    n = L.shape[0]
    keep = np.ones(n)
    keep[p] = 0.0
    A = sp.diags(keep) @ (-L) + sp.csr_matrix(([1.0], ([p], [p])), shape=(n, n))
    b = np.zeros(n)
    b[p] = 1.0
    return A.tocsr(), b


def pinned_symmetrised(L, p, g):
    """``S = G^{-1/2} A G^{1/2}`` for `pinned_system`'s ``A``, ``S_{ij} = A_{ij} \\sqrt{g_j / g_i}``,
    in one pass over the CSR arrays of ``L`` (``O(nnz)``, no sparse products)."""
    L = sp.csr_matrix(L)
    root = np.sqrt(g)
    data = root[L.indices]                            # in place: the temporaries cost more than the arithmetic
    data /= np.repeat(root, np.diff(L.indptr))
    data *= L.data
    np.negative(data, out=data)
    lo, hi = L.indptr[p], L.indptr[p + 1]
    data[lo:hi] = np.where(L.indices[lo:hi] == p, 1.0, 0.0)
    if not np.any(L.indices[lo:hi] == p):
        raise ValueError("the generator stores no diagonal entry at the pin cell")
    S = sp.csr_matrix((data, L.indices.copy(), L.indptr.copy()), shape=L.shape)   # L stays intact
    S.eliminate_zeros()
    return S


def pinned_scaled(L, p, g):
    """`pinned_symmetrised` with the pin row scaled by ``c = -L_pp`` (the Dirichlet row on the scale of
    its neighbours' rows, which the geometric coarse levels need), and ``c``: ``S' v = c e_p``."""
    S = pinned_symmetrised(L, p, g)
    c = -float(L[p, p])
    S.data[S.indptr[p]:S.indptr[p + 1]] *= c
    return S, c


def pinned_residual(L, p, rho):
    """``||A rho - e_p||_2`` from ``L`` (host or device) without assembling ``A``."""
    r = -(L @ rho)
    r[p] = rho[p] - 1.0
    return float((r * r).sum()) ** 0.5


def solve(L, p, g, factor, tol, asarray=np.asarray, csr=sp.csr_matrix, shape=None):
    """``rho`` with ``A rho = e_p`` by the iterative ``factor(matrix).solve(rhs, x0)``.

    With the grid ``shape`` (host) and pyamg installed, first by geometric multigrid
    (`multigrid.Geometric` on `pinned_scaled`, residual ``tol`` absolute, i.e. relative to
    ``e_p``), then by ``factor`` on ``S`` from ``sqrt(g)``; each accepted when the residual
    of ``A`` itself is within ``10 tol`` (in floating point the bound ``|r_A| <= |r_S|`` can
    fail where the state exceeds ``g`` by many orders of magnitude, e.g. the tails on a
    coarse grid); otherwise by ``factor`` on ``A`` from ``g``. ``asarray`` and ``csr`` move
    vectors and ``L`` to the solver's device.
    """
    b = np.zeros(L.shape[0])
    b[p] = 1.0
    root = asarray(np.sqrt(g))
    if shape is not None and multigrid.available():
        try:
            S, c = pinned_scaled(L, p, g)
            rho = root * multigrid.Geometric(S, shape, root, tol).solve(c * b, x0=root)
            if pinned_residual(L, p, rho) <= 10 * tol:
                return rho
        except SolverError:
            pass
    try:
        rho = root * factor(pinned_symmetrised(L, p, g)).solve(b, x0=root)
        if pinned_residual(csr(L), p, rho) <= 10 * tol:
            return rho
    except SolverError:
        pass
    return factor(pinned_system(L, p)[0]).solve(b, x0=asarray(g))
