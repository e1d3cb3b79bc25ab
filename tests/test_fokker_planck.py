"""Fokker-Planck solver: grid, isotropic steady state, conservation, monotonicity, errors.

Deterministic numerics: tolerances are stated per test; convergence orders
are least-squares slopes on a log-log scale with tolerance 0.3.
"""

import warnings

import numpy as np
import pytest

import sdesim as sd
from sdesim.errors import ShapeError
from sdesim.fokker_planck import (
    BoundaryMassWarning,
    NonPSDError,
    PositivityWarning,
    ResolutionWarning,
)

pytestmark = pytest.mark.filterwarnings("error::UserWarning")


def slope(h, err):
    return np.polyfit(np.log(h), np.log(err), 1)[0]


@pytest.fixture(scope="module")
def well2d():
    return sd.Loss("(x**2 - 1)**2 + 2*y**2 + 0.5*x*y")


def test_grid_geometry():
    g = sd.Grid([(-1, 1), (0, 3)], (4, 6))
    assert g.dim == 2 and g.size == 24 and g.centers.shape == (4, 6, 2)
    assert np.allclose(g.spacing, [0.5, 0.5]) and g.cell_volume == 0.25
    assert np.allclose(g.axes[0], [-0.75, -0.25, 0.25, 0.75]) and len(g.edges[1]) == 7
    assert g.boundary_mask().sum() == 24 - 2 * 4
    W = np.random.default_rng(0).uniform([-1, 0], [1, 3], size=(1000, 2))
    assert g.mass(g.histogram(W)) == pytest.approx(1.0)
    with pytest.raises(ShapeError):
        sd.Grid([(0, 1)], (10, 10))
    with pytest.raises(ShapeError):
        g.check_density(np.ones((6, 4)))


def test_gibbs_steady_state_exact_2d(well2d):
    """Gradient drift, D = T I: the discrete steady state is Gibbs at the centres (round-off)."""
    g = sd.Grid([(-2.5, 2.5), (-2.5, 2.5)], (120, 100))
    fp = sd.FokkerPlanck(well2d, temperature=0.2, grid=g)
    rho = fp.steady_state()
    gibbs = g.normalize(np.exp(-well2d.value(g.centers) / 0.2))
    assert np.abs(rho - gibbs).sum() * g.cell_volume < 1e-10
    assert abs(g.mass(rho) - 1) < 1e-12
    assert np.abs(fp.current(rho)).max() < 1e-10
    L = fp.matrix()
    assert np.abs(np.asarray(L.sum(axis=0))).max() < 1e-12 * abs(L.diagonal()).max()


def test_gibbs_3d():
    loss = sd.Loss("(x**2 - 1)**2 + y**2 + z**2 + 0.3*x*z")
    g = sd.Grid([(-2, 2), (-2.5, 2.5), (-2.5, 2.5)], (50, 28, 28))
    rho = sd.FokkerPlanck(loss, temperature=0.3, grid=g).steady_state()
    gibbs = g.normalize(np.exp(-loss.value(g.centers) / 0.3))
    assert np.abs(rho - gibbs).sum() * g.cell_volume < 1e-10


@pytest.mark.filterwarnings("ignore::sdesim.fokker_planck.ResolutionWarning")
def test_modified_drift_gibbs_order_4():
    """A general drift (the GD-modified drift -grad C~) is integrated along links by
    Simpson's rule: L1 error against exp(-C~/T) falls as h^4 (slope 4 +- 0.3)."""
    loss = sd.Loss("(x**2 - 1)**2")
    mod = loss.modified(0.05)
    hs, errs = [], []
    for n in (50, 100, 200):
        g = sd.Grid([(-2, 2)], (n,))
        fp = sd.FokkerPlanck(loss, temperature=0.2, grid=g, drift=lambda W: -mod.grad(W))
        exact = g.normalize(np.exp(-mod.value(g.centers) / 0.2))
        hs.append(g.spacing[0])
        errs.append(np.abs(fp.steady_state() - exact).sum() * g.cell_volume)
    assert abs(slope(hs, errs) - 4) < 0.3 and errs[-1] < 1e-8


@pytest.mark.filterwarnings("ignore::sdesim.fokker_planck.ResolutionWarning")
def test_state_dependent_diffusion_order_2():
    """1D Ito FP with D(x) = T (1 + x^2), C = (x^2-1)^2: steady state
    rho ~ exp(-(2x^2 - 4 log(1+x^2)) / T) / (1 + x^2); L1 error slope 2 +- 0.3."""
    T = 0.2
    loss = sd.Loss("(x**2 - 1)**2")
    hs, errs = [], []
    for n in (50, 100, 200, 400):
        g = sd.Grid([(-2.5, 2.5)], (n,))
        x = g.axes[0]
        fp = sd.FokkerPlanck(loss, grid=g, diffusion=lambda W: T * (1 + W[..., None] ** 2))
        exact = g.normalize(np.exp(-(2 * x**2 - 4 * np.log1p(x**2)) / T) / (1 + x**2))
        hs.append(g.spacing[0])
        errs.append(np.abs(fp.steady_state() - exact).sum() * g.cell_volume)
    assert abs(slope(hs, errs) - 2) < 0.3 and errs[-1] < 1e-4


def test_evolve_mass_positivity_and_monotone_kl_free_energy(well2d):
    """Backward Euler: mass to 1e-12, rho >= 0, KL(rho_t||rho_inf) and F = E[C] - T H
    non-increasing (the step is a Markov matrix with the Gibbs density fixed)."""
    T = 0.2
    g = sd.Grid([(-2.5, 2.5), (-2.5, 2.5)], (100, 100))
    fp = sd.FokkerPlanck(well2d, temperature=T, grid=g)
    rho_inf = fp.steady_state()
    res = fp.evolve(g.gaussian([0.1, 0.8], 0.02 * np.eye(2)), t_end=2.0, dt=0.02, record=1)
    assert res.rho.shape == (101, 100, 100) and res.t[-1] == pytest.approx(2.0)
    assert np.abs(res.mass() - 1).max() < 1e-12
    assert res.rho.min() >= -1e-15
    kl = np.array([fp.kl(r, rho_inf) for r in res.rho])
    F = np.array([fp.free_energy(r) for r in res.rho])
    assert np.all(np.diff(kl) <= 1e-13) and kl[-1] < 1e-2 * kl[0]
    assert np.all(np.diff(F) <= 1e-13)
    # F = T KL + F_inf with the discrete Gibbs density
    assert F[5] - F[-1] == pytest.approx(T * (kl[5] - kl[-1]), rel=1e-8)


def test_observables():
    g = sd.Grid([(-3, 3), (-2, 2)], (60, 50))
    rho = g.gaussian([0.5, 0.0], np.diag([0.3, 0.1]))
    fp = sd.FokkerPlanck(sd.Loss("x**2 + y**2"), temperature=0.1, grid=g)
    mx = fp.marginal(rho, 0)
    assert mx.shape == (60,) and np.sum(mx) * g.spacing[0] == pytest.approx(1.0)
    assert fp.marginal(rho, (1, 0)).shape == (50, 60)
    assert fp.kl(rho, rho) == pytest.approx(0.0, abs=1e-14)
    h_exact = 0.5 * np.log((2 * np.pi * np.e) ** 2 * 0.03)
    assert fp.entropy(rho) == pytest.approx(h_exact, rel=2e-3)


def test_errors_and_warnings(well2d):
    g = sd.Grid([(-2.5, 2.5), (-2.5, 2.5)], (40, 40))
    with pytest.raises(NonPSDError):
        sd.FokkerPlanck(well2d, grid=g, diffusion=np.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(NonPSDError, match="at w ="):
        sd.FokkerPlanck(well2d, grid=g, diffusion=lambda W: W[..., :, None] * W[..., None, :]
                        - 0.1 * np.eye(2))
    with pytest.raises(ShapeError):
        sd.FokkerPlanck(well2d, grid=g, diffusion=np.eye(3))
    with pytest.raises(ShapeError):
        sd.FokkerPlanck(sd.Loss("x**2"), temperature=0.1, grid=g)
    with pytest.raises(ValueError):
        sd.FokkerPlanck(well2d, grid=g)
    with pytest.warns(PositivityWarning):
        sd.FokkerPlanck(well2d, grid=g, diffusion=np.array([[1.0, 0.5], [0.5, 0.3]]))
    with pytest.warns(BoundaryMassWarning):
        sd.FokkerPlanck(well2d, temperature=5.0, grid=g).steady_state()
    with pytest.warns(ResolutionWarning):
        sd.FokkerPlanck(well2d, temperature=0.01, grid=g).steady_state()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sd.FokkerPlanck(well2d, temperature=0.2, grid=sd.Grid([(-2.5, 2.5)] * 2, (80, 80))).steady_state()


def test_iterative_solver_matches_direct(well2d):
    g = sd.Grid([(-2.5, 2.5), (-2.5, 2.5)], (100, 100))
    D = 0.1 * np.array([[1.0, 0.5], [0.5, 1.0]])
    direct = sd.FokkerPlanck(well2d, grid=g, diffusion=D, solver="direct")
    iterative = sd.FokkerPlanck(well2d, grid=g, diffusion=D, solver="iterative", tol=1e-12)
    assert np.abs(direct.steady_state() - iterative.steady_state()).sum() * g.cell_volume < 1e-8
    rho0 = g.gaussian([1, 0], 0.05 * np.eye(2))
    a = direct.evolve(rho0, 0.5, 0.05).rho[-1]
    b = iterative.evolve(rho0, 0.5, 0.05).rho[-1]
    assert np.abs(a - b).sum() * g.cell_volume < 1e-8


def test_split_stepping(well2d):
    """method='split' (backward Euler per lattice direction): mass to 1e-12, rho >= 0,
    the Gibbs density is a fixed point (1e-12) and KL decreases for D = T I; with
    anisotropic D its error against a fine TR-BDF2 reference falls at order 1 (+- 0.3)."""
    g = sd.Grid([(-2.5, 2.5), (-2.5, 2.5)], (100, 100))
    fp = sd.FokkerPlanck(well2d, temperature=0.2, grid=g)
    gibbs = g.normalize(np.exp(-well2d.value(g.centers) / 0.2))
    assert np.abs(fp.evolve(gibbs, 0.5, 0.05, method="split").rho[-1] - gibbs).sum() \
        * g.cell_volume < 1e-12
    res = fp.evolve(g.gaussian([0.1, 0.8], 0.02 * np.eye(2)), 1.0, 0.02, record=1, method="split")
    kl = [fp.kl(r, gibbs) for r in res.rho]
    assert np.abs(res.mass() - 1).max() < 1e-12 and res.rho.min() >= 0
    assert np.all(np.diff(kl) <= 1e-13)
    aniso = sd.FokkerPlanck(well2d, grid=g, diffusion=0.2 * np.array([[1.0, 0.5], [0.5, 1.0]]))
    rho0 = g.gaussian([0.5, 0.5], 0.05 * np.eye(2))
    ref = aniso.evolve(rho0, 0.4, 0.4 / 128, method="tr-bdf2").rho[-1]
    dts = [0.04, 0.02, 0.01]
    errs = [np.abs(aniso.evolve(rho0, 0.4, dt, method="split").rho[-1] - ref).sum() for dt in dts]
    assert abs(slope(dts, errs) - 1) < 0.3


def test_evolve_and_mfpt_api():
    g = sd.Grid([(-2.0, 2.0)], (200,))
    fp = sd.FokkerPlanck(sd.Loss("(x**2 - 1)**2"), temperature=0.2, grid=g)
    rho0 = lambda X: np.exp(-((X[..., 0] + 1) ** 2) / 0.02)
    res = fp.evolve(rho0, 1.0, 0.1, record=[0.0, 0.3, 1.0])
    assert np.allclose(res.t, [0.0, 0.3, 1.0]) and res.rho.shape == (3, 200)
    assert res.metadata["steps"] == 10 and res.metadata["method"] == "backward-euler"
    assert len(fp.evolve(rho0, 1.0, 0.1, record=3).t) == 5          # steps 0, 3, 6, 9, 10
    assert np.allclose(fp.evolve(rho0, 1.0, 0.3).t, [0.0, 1.0])      # dt shrunk to 0.25
    with pytest.raises(ValueError):
        fp.evolve(rho0, 1.0, 0.1, record=[0.05])
    with pytest.raises(ValueError):
        fp.evolve(rho0, 1.0, 0.1, method="rk4")
    with pytest.raises(ValueError):
        fp.mean_first_passage_time(np.zeros(200, dtype=bool))
    with pytest.raises(ShapeError):
        fp.mean_first_passage_time(np.zeros(100, dtype=bool))
    tau = fp.mean_first_passage_time(g.axes[0] > 1.0)
    assert tau[g.axes[0] > 1.0].max() == 0 and np.all(np.diff(tau[g.axes[0] < 0]) <= 0)


def test_noise_schedule_factorises_once_per_value():
    """A step schedule changes D once: results equal two evolutions glued at the step
    (in 1D the split stepper has one direction and equals backward Euler)."""
    g = sd.Grid([(-1.5, 1.5)], (300,))
    loss = sd.Loss("x**2")
    rho0 = g.gaussian([0.5], [[0.01]])
    fp = sd.FokkerPlanck(loss, temperature=0.1, grid=g, noise_schedule=lambda t: 1.0 if t <= 0.5 else 0.5)
    glued = sd.FokkerPlanck(loss, temperature=0.05, grid=g).evolve(
        sd.FokkerPlanck(loss, temperature=0.1, grid=g).evolve(rho0, 0.5, 0.05).rho[-1], 0.5, 0.05)
    for method in ("backward-euler", "split"):
        one = fp.evolve(rho0, 1.0, 0.05, method=method).rho[-1]
        assert np.abs(one - glued.rho[-1]).max() < 1e-12 * glued.rho.max()
    assert fp.free_energy(rho0) == pytest.approx(
        sd.FokkerPlanck(loss, temperature=0.1, grid=g).free_energy(rho0))


def test_iterative_without_pyamg_uses_ilu(well2d, monkeypatch):
    """pyamg is optional: without it the iterative path preconditions with ILU and still
    agrees with the direct solver (L1 1e-8, non-equilibrium steady state, 100x100)."""
    from sdesim.fokker_planck import linsolve

    real, calls = linsolve.importlib.util.find_spec, []
    monkeypatch.setattr(linsolve.importlib.util, "find_spec",
                        lambda name, *a: None if name == "pyamg" else real(name, *a))
    spilu = linsolve.spla.spilu
    monkeypatch.setattr(linsolve.spla, "spilu", lambda *a, **k: calls.append(1) or spilu(*a, **k))
    g = sd.Grid([(-2.5, 2.5), (-2.5, 2.5)], (100, 100))
    D = 0.1 * np.array([[1.0, 0.5], [0.5, 1.0]])
    it = sd.FokkerPlanck(well2d, grid=g, diffusion=D, solver="iterative", tol=1e-12)
    direct = sd.FokkerPlanck(well2d, grid=g, diffusion=D, solver="direct")
    assert np.abs(direct.steady_state() - it.steady_state()).sum() * g.cell_volume < 1e-8
    assert calls == [1]
