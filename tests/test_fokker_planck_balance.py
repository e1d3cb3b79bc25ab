"""Closed-form steady states (detailed balance): the scheme's exact null vector in O(N).

Checks that the closed form is taken exactly where the discrete rates are in detailed
balance, agrees with the linear solve (``closed_form=False``) there, and is refused
(falls back to the solve) for non-equilibrium steady states. Deterministic numerics;
tolerances stated per test.
"""

import numpy as np
import pytest

import sdesim as sd
from sdesim.fokker_planck.balance import (
    BALANCE_TOL,
    apply_generator,
    closed_form_steady_state,
)

pytestmark = pytest.mark.filterwarnings("error::UserWarning")

WELL2D = "(x**2 - 1)**2 + 2*y**2 + 0.5*x*y"


def l1(grid, a, b):
    return np.abs(a - b).sum() * grid.cell_volume


def test_isotropic_gradient_closed_form_is_gibbs_and_matches_solve():
    """D = T I, b = -grad C: the closed form is exp(-C/T) (L1 1e-14 to Gibbs), agrees with
    the sparse-LU solve to 1e-10 and has relative residual below BALANCE_TOL."""
    loss = sd.Loss(WELL2D)
    g = sd.Grid([(-2.5, 2.5), (-2.5, 2.5)], (90, 80))
    fp = sd.FokkerPlanck(loss, temperature=0.1, grid=g)
    rho = fp.steady_state(closed_form=True)
    gibbs = g.normalize(np.exp(-(fp.potential - fp.potential.min()) / 0.1))
    assert l1(g, rho, gibbs) < 1e-14
    assert l1(g, rho, fp.steady_state(closed_form=False)) < 1e-10
    L = fp.matrix()
    assert np.linalg.norm(L @ rho.ravel()) < BALANCE_TOL * np.linalg.norm(L.data) * np.linalg.norm(rho)


def test_1d_product_recursion_any_drift_and_state_dependent_diffusion():
    """1D, modified drift and D(x) = 0.05 (1 + x^2): zero flux on every link (relative
    flux 1e-13); matches the solve to 1e-6 in L1 (the pinned-row LU is the less accurate
    of the two: its link fluxes are off by about 1e-7 relative)."""
    loss = sd.Loss("(x**2 - 1)**2")
    g = sd.Grid([(-2.5, 2.5)], (1000,))
    fp = sd.FokkerPlanck(loss, grid=g, diffusion=lambda X: (0.05 * (1 + X[..., 0] ** 2))[..., None, None],
                         drift=lambda X: -loss.grad(X) * (1 + 0.1 * np.tanh(X)))
    rho = fp.steady_state(closed_form=True).ravel()
    fwd, bwd = fp.operator.links[0].rates()
    flux = fwd[:-1] * rho[:-1] - bwd[:-1] * rho[1:]
    assert np.max(np.abs(flux) / (fwd[:-1] * rho[:-1])) < 1e-13
    assert l1(g, rho, fp.steady_state(closed_form=False).ravel()) < 1e-6


def test_commuting_anisotropic_quadratic_takes_closed_form():
    """Quadratic loss with D = 0.05 H (commuting: equilibrium, Gibbs-type with cross links):
    Simpson's rule is exact for the linear field D^-1 b, so the rates are in detailed
    balance; closed form equals the solve to 1e-12."""
    H = np.array([[2.0, 0.5], [0.5, 1.0]])
    g = sd.Grid([(-1.5, 1.5), (-1.5, 1.5)], (60, 60))
    fp = sd.FokkerPlanck(sd.QuadraticModel(hessian=H, noise_covariance=H), diffusion=0.05 * H, grid=g)
    assert l1(g, fp.steady_state(closed_form=True), fp.steady_state(closed_form=False)) < 1e-12


@pytest.mark.parametrize("D", [np.diag([0.1, 0.2]), 0.1 * np.array([[1.0, 0.5], [0.5, 1.0]])])
def test_non_equilibrium_falls_back_to_solve(D):
    """Diagonal anisotropic D with b = -grad C (Simpson link integrals are not exact
    potential differences: the residual is about 1e-5) and a non-commuting cross term:
    no closed form; the default path solves (identical to closed_form=False)."""
    g = sd.Grid([(-2.5, 2.5), (-2.5, 2.5)], (100, 100))
    fp = sd.FokkerPlanck(sd.Loss(WELL2D), diffusion=D, grid=g)
    assert closed_form_steady_state(fp.operator) is None
    with pytest.raises(ValueError, match="detailed balance"):
        fp.steady_state(closed_form=True)
    assert np.array_equal(fp.steady_state(), fp.steady_state(closed_form=False))


def test_matrix_free_product_equals_sparse_matrix():
    g = sd.Grid([(-2.0, 2.0), (-2.0, 2.0)], (20, 30))
    fp = sd.FokkerPlanck(sd.Loss(WELL2D), diffusion=0.1 * np.array([[1.0, 0.3], [0.3, 0.8]]), grid=g)
    rho = np.random.default_rng(0).random(g.size)
    links = fp.operator.links
    out, frob2 = apply_generator(links, [link.rates() for link in links], rho)
    L = fp.matrix()
    assert np.allclose(out, L @ rho, rtol=0, atol=1e-12 * np.abs(L @ rho).max())
    assert frob2 == pytest.approx(np.sum(L.data ** 2), rel=1e-12)


@pytest.mark.parametrize("D", [None, 0.1 * np.array([[1.0, 0.5], [0.5, 1.0]])])
def test_split_strided_thomas_matches_lapack_chain_order(D):
    """The in-place strided Thomas kernel (no pivoting) equals LAPACK gttrs in chain order
    to 1e-13 relative over 20 split steps, isotropic (2 directions) and anisotropic (4)."""
    from sdesim.fokker_planck.split import SplitStepper

    g = sd.Grid([(-2.5, 2.5), (-2.0, 2.0)], (60, 50))
    loss = sd.Loss(WELL2D)
    fp = sd.FokkerPlanck(loss, temperature=0.2, grid=g) if D is None else \
        sd.FokkerPlanck(loss, diffusion=D, grid=g)
    fast, ref = SplitStepper(fp.operator, 0.05), SplitStepper(fp.operator, 0.05, strided=False)
    assert fast.strided is not None and ref.strided is None
    a = b = g.gaussian([0.5, 0.3], 0.05 * np.eye(2)).ravel()
    for k in range(20):
        a, b = fast.step(a, k % 2), ref.step(b, k % 2)
    assert np.abs(a - b).max() < 1e-13 * b.max()


def test_commuting_anisotropic_quadratic_3d_tree():
    """3D, D = 0.1 H with cross terms (19-point links): the axis-link spanning tree gives
    the null vector; equals the sparse-LU solve to 1e-11 in L1."""
    H = np.array([[2.0, 0.5, 0.2], [0.5, 1.0, 0.1], [0.2, 0.1, 1.5]])
    g = sd.Grid([(-2.0, 2.0)] * 3, (20, 22, 18))
    fp = sd.FokkerPlanck(sd.QuadraticModel(hessian=H, noise_covariance=H), diffusion=0.1 * H, grid=g,
                         solver="direct")
    assert l1(g, fp.steady_state(closed_form=True), fp.steady_state(closed_form=False)) < 1e-11
