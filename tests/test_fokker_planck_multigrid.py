"""Geometric multigrid of the steady-state solve: the prolongation and the solve against LU.

Deterministic numerics: the prolongation is exact for linear functions (round-off, 1e-12);
the multigrid solve meets its absolute residual ``10 tol`` on the pinned system and agrees
with the direct solve to 1e-8 in L1 (the tolerance of the other iterative-vs-direct tests).
"""

import numpy as np
import pytest
import scipy.sparse.linalg as spla

import sdesim as sd
from sdesim.fokker_planck import SolverError, multigrid, steady
from sdesim.fokker_planck.linsolve import factorize

pytestmark = pytest.mark.filterwarnings("error::UserWarning")

EXPR = {2: "(x**2 - 1)**2 + 2*y**2 + 0.5*x*y", 3: "x**2 + y**2 + z**2 + 0.5*x*y + 0.3*x*z"}
BOX = {2: 2.5, 3: 1.5}


@pytest.mark.parametrize("shape", [(9,), (10, 7), (8, 9, 6)])
def test_prolongation_reproduces_linear_functions(shape):
    """``P f_c = f`` for ``f = 1 + sum_i (i + 2) x_i`` (index units, coarse cell at its children's mean
    centre) at every fine cell between the outermost coarse centres; constants everywhere."""
    P, coarse = multigrid.prolongation(shape)
    assert P.shape == (int(np.prod(shape)), int(np.prod(coarse)))
    assert coarse == tuple((n + 1) // 2 for n in shape)
    fine = np.meshgrid(*[np.arange(n, dtype=float) for n in shape], indexing="ij")
    centre = [0.5 * (np.arange(0, n, 2) + np.minimum(np.arange(1, n + 1, 2), n - 1)) for n in shape]
    mid = np.meshgrid(*centre, indexing="ij")
    f = lambda X: 1.0 + sum((i + 2) * x for i, x in enumerate(X))
    interior = np.ones(shape, dtype=bool)
    for X, c in zip(fine, centre):
        interior &= (X >= c[0]) & (X <= c[-1])
    got = (P @ f(mid).ravel()).reshape(shape)
    np.testing.assert_allclose(got[interior], f(fine)[interior], rtol=1e-12)
    np.testing.assert_allclose(P @ np.ones(P.shape[1]), 1.0, rtol=1e-14)
    assert not interior.all()                                   # the walls hold the constant extrapolation


@pytest.mark.parametrize("dim, shape", [(2, (160, 130)), (3, (24, 22, 20))])
def test_geometric_solve_matches_direct(dim, shape):
    """Non-equilibrium steady state (``D = 0.1 ((1 - c) I + c 1 1^T)``, no closed form; cell Peclet
    numbers of a few) by BiCGSTAB with the geometric V-cycle on the scaled system against LU on the
    pinned system, and through `FokkerPlanck.steady_state` (solver="iterative")."""
    c = {2: 0.5, 3: 0.3}[dim]
    g = sd.Grid([(-BOX[dim], BOX[dim])] * dim, shape)
    D = 0.1 * ((1 - c) * np.eye(dim) + c * np.ones((dim, dim)))
    fp = sd.FokkerPlanck(sd.Loss(EXPR[dim]), diffusion=D, grid=g, solver="direct")
    L, p = fp.matrix(), steady.pin_cell(fp.potential)
    ref = steady.reference_density(fp.potential, fp.diffusion, dim)
    tol, root = 1e-12, np.sqrt(ref)
    S, scale = steady.pinned_scaled(L, p, ref)
    assert len(multigrid.hierarchy(S, shape, root)) >= 2
    b = np.zeros(g.size)
    b[p] = 1.0
    rho = root * multigrid.Geometric(S, shape, root, tol).solve(scale * b, x0=root)
    assert steady.pinned_residual(L, p, rho) <= 10 * tol
    A, _ = steady.pinned_system(L, p)
    exact = g.normalize(spla.spsolve(A.tocsc(), b).reshape(shape))
    assert np.abs(g.normalize(rho.reshape(shape)) - exact).sum() * g.cell_volume < 1e-8
    iterative = sd.FokkerPlanck(sd.Loss(EXPR[dim]), diffusion=D, grid=g, solver="iterative", tol=tol)
    assert np.abs(iterative.steady_state() - exact).sum() * g.cell_volume < 1e-8


def test_falls_back_where_the_geometric_solve_fails():
    """Cell Peclet numbers up to ~25 (100^2, ``D = 0.05 (I + offdiag 0.5)``): the geometric solve
    misses ``tol`` (`SolverError`) and `steady.solve` returns exactly the algebraic solves' answer
    (the path taken without the grid shape, unchanged)."""
    g = sd.Grid([(-2.5, 2.5)] * 2, (100, 100))
    D = 0.05 * np.array([[1.0, 0.5], [0.5, 1.0]])
    fp = sd.FokkerPlanck(sd.Loss(EXPR[2]), solver="iterative", diffusion=D, grid=g)
    L, p = fp.matrix(), steady.pin_cell(fp.potential)
    ref = steady.reference_density(fp.potential, fp.diffusion, 2)
    S, scale = steady.pinned_scaled(L, p, ref)
    b = np.zeros(g.size)
    b[p] = scale
    with pytest.raises(SolverError, match="geometric multigrid"):
        multigrid.Geometric(S, g.shape, np.sqrt(ref), 1e-12).solve(b, x0=np.sqrt(ref))
    factor = lambda M: factorize(M, "iterative", 2, 1e-12)
    rho = steady.solve(L, p, ref, factor, 1e-12, shape=g.shape)
    assert np.array_equal(rho, steady.solve(L, p, ref, factor, 1e-12))
    assert steady.pinned_residual(L, p, rho) <= 1e-11
