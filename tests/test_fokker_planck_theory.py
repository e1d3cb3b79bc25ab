"""Fokker-Planck solver against exact theory (docs/theory.md#continuous-lyapunov,
docs/theory.md#circulation, docs/theory.md#first-passage, docs/theory.md#kramers).

Non-equilibrium steady state of a quadratic model (continuous Lyapunov
covariance, current, circulation), mean first-passage times (double
quadrature, Kramers) and transient Ornstein-Uhlenbeck moments. Deterministic
numerics: tolerances and fitted orders (slope tolerance 0.3) stated per test.
"""

import numpy as np
import pytest
from scipy import integrate, linalg

import sdesim as sd

pytestmark = pytest.mark.filterwarnings("error::UserWarning")

H = np.diag([1.0, 4.0])
S = np.array([[1.0, 0.6], [0.6, 1.0]])     # does not commute with H
D = 0.05 * S                               # D = lr S / 2B
P = linalg.solve_continuous_lyapunov(H, 2 * D)   # H P + P H = 2 D


def slope(h, err):
    return np.polyfit(np.log(h), np.log(err), 1)[0]


def moments(grid, rho):
    X, r, V = grid.centers.reshape(-1, grid.dim), rho.ravel(), grid.cell_volume
    mean = X.T @ r * V
    cov = (X.T * r) @ X * V - np.outer(mean, mean)
    # cell averages: a uniform density within a cell adds h^2/12 to each variance
    return mean, cov + np.diag(grid.spacing**2 / 12)


def quadratic_nss(n):
    grid = sd.Grid([(-1.2, 1.2), (-0.8, 0.8)], (n, int(n * 2 / 3)))
    fp = sd.FokkerPlanck(sd.QuadraticModel(hessian=H, noise_covariance=S), diffusion=D, grid=grid)
    return grid, fp, fp.steady_state()


def test_lyapunov_covariance_current_and_circulation():
    """Steady state N(0, P) with H P + P H = 2D; J = (-H w + D P^-1 w) rho;
    circulation int (w1 J2 - w2 J1) = (H P - P H)_12 != 0. Errors fall at order 2
    (slope 2 +- 0.3); at 240 x 160 cells: covariance 5e-4 relative, current 5e-3 (L1,
    relative), circulation 2e-3 relative."""
    hs, cov_err, circ_err = [], [], []
    circ_theory = (H @ P - P @ H)[0, 1]
    assert abs(circ_theory) > 1e-2
    for n in (60, 120, 240):
        grid, fp, rho = quadratic_nss(n)
        assert rho.min() >= 0
        mean, cov = moments(grid, rho)
        X = grid.centers
        J = fp.current(rho)
        circ = np.sum(X[..., 0] * J[..., 1] - X[..., 1] * J[..., 0]) * grid.cell_volume
        hs.append(grid.spacing[0])
        cov_err.append(np.abs(cov - P).max() / np.abs(P).max())
        circ_err.append(abs(circ / circ_theory - 1))
    assert np.abs(mean).max() < 1e-10
    assert abs(slope(hs, cov_err) - 2) < 0.3 and cov_err[-1] < 5e-4
    assert abs(slope(hs, circ_err) - 2) < 0.3 and circ_err[-1] < 2e-3
    J_theory = (X @ (-H + D @ np.linalg.inv(P)).T) * rho[..., None]
    assert np.abs(J - J_theory).sum() / np.abs(J_theory).sum() < 5e-3


def test_positivity_strong_cross_diffusion_nonquadratic():
    """D = 0.1 [[1, 0.8], [0.8, 1]] on a square grid: the lattice decomposition has
    non-negative weights, so the steady state is non-negative, mass is exact, and the
    current is divergence-free in the discrete sense (L rho = 0 to round-off)."""
    loss = sd.Loss("(x**2 - 1)**2 + 2*y**2 + 0.5*x*y")
    grid = sd.Grid([(-2.5, 2.5), (-2.5, 2.5)], (200, 200))
    fp = sd.FokkerPlanck(loss, diffusion=0.1 * np.array([[1.0, 0.8], [0.8, 1.0]]), grid=grid)
    rho = fp.steady_state()
    assert rho.min() >= 0 and abs(grid.mass(rho) - 1) < 1e-12
    assert np.abs(fp.matrix() @ rho.ravel()).max() < 1e-10 * rho.max()


def double_well_exact_mfpt(T, x0=-1.0, x1=1.0):
    """tau = 1/T int_{x0}^{x1} dy e^{C(y)/T} int_{-inf}^{y} dz e^{-C(z)/T} (quadrature, rel 1e-11)."""
    C = lambda x: (x**2 - 1) ** 2
    inner = lambda y: integrate.quad(lambda z: np.exp(-C(z) / T), -np.inf, y, epsrel=1e-13, limit=200)[0]
    return integrate.quad(lambda y: np.exp(C(y) / T) * inner(y), x0, x1, epsrel=1e-12, limit=200)[0] / T


@pytest.fixture(scope="module")
def double_well():
    return sd.Loss("(x**2 - 1)**2")


def test_mfpt_double_quadrature(double_well):
    """Discrete backward equation vs the exact double quadrature from x0 = -1 to the
    absorbing set x >= 1, T = 0.1: relative error < 1e-4 at h = 2.5e-3, order 2."""
    T = 0.1
    exact = double_well_exact_mfpt(T)
    hs, errs = [], []
    for n in (500, 1000, 2000):
        grid = sd.Grid([(-2.5, 2.5)], (n,))
        tau = sd.FokkerPlanck(double_well, temperature=T, grid=grid).mean_first_passage_time(
            lambda X: X[..., 0] >= 1.0)
        assert np.all(tau[grid.axes[0] >= 1.0] == 0)
        hs.append(grid.spacing[0])
        errs.append(abs(np.interp(-1.0, grid.axes[0], tau) / exact - 1))
    assert errs[-1] < 1e-4 and abs(slope(hs, errs) - 2) < 0.3


def test_mfpt_within_1e6_of_quadrature_fine_1d_grid(double_well):
    """Issue-4 target: within 1e-6 of the double quadrature (T = 0.1, x0 = -1, x >= 1). A 1D
    grid of 2e4 cells (h = 2.5e-4) is a tridiagonal solve of a few ms: measured 1.8e-7;
    Richardson over 1e4 / 2e4 cells, (4 tau_{h/2} - tau_h) / 3, measured 2.7e-8 (< 1e-7)."""
    exact = double_well_exact_mfpt(0.1)
    vals = []
    for n in (10_000, 20_000):
        grid = sd.Grid([(-2.5, 2.5)], (n,))
        tau = sd.FokkerPlanck(double_well, temperature=0.1, grid=grid).mean_first_passage_time(
            lambda X: X[..., 0] >= 1.0)
        vals.append(np.interp(-1.0, grid.axes[0], tau))
    assert abs(vals[1] / exact - 1) < 1e-6
    assert abs((4 * vals[1] - vals[0]) / 3 / exact - 1) < 1e-7


def test_mfpt_kramers_asymptotics(double_well):
    """Kramers tau_K = 2 pi / sqrt(C''(a)|C''(b)|) exp(dC/T) is asymptotic in T/dC: its
    relative error is O(T/dC) (about 0.4 T/dC here), so we require 5% at T = 0.1, 2.5% at
    T = 0.05, and the error to halve (ratio 2 +- 0.3) when T halves."""
    errs = []
    for T in (0.1, 0.05):
        grid = sd.Grid([(-2.5, 2.5)], (2000,))
        tau = sd.FokkerPlanck(double_well, temperature=T, grid=grid).mean_first_passage_time(
            lambda X: X[..., 0] >= 1.0)
        kramers = 2 * np.pi / np.sqrt(8.0 * 4.0) * np.exp(1.0 / T)
        errs.append(abs(np.interp(-1.0, grid.axes[0], tau) / kramers - 1))
    assert errs[0] < 0.05 and errs[1] < 0.025 and abs(errs[0] / errs[1] - 2) < 0.3


def test_mfpt_2d_target_callable():
    """2D separable well C = (x^2-1)^2 + y^2 with target x >= 1 reduces to the 1D
    problem in x (the y-motion is independent): agreement with the quadrature to 1e-3."""
    T = 0.15
    grid = sd.Grid([(-2.2, 2.2), (-1.5, 1.5)], (220, 60))
    fp = sd.FokkerPlanck(sd.Loss("(x**2 - 1)**2 + y**2"), temperature=T, grid=grid)
    tau = fp.mean_first_passage_time(lambda X: X[..., 0] >= 1.0)
    j = np.argmin(np.abs(grid.axes[1]))
    value = np.interp(-1.0, grid.axes[0], tau[:, j])
    assert value == pytest.approx(double_well_exact_mfpt(T), rel=1e-3)
    assert np.ptp(tau[:, 20:40], axis=1).max() < 1e-8 * tau.max()


def ou_moments(t, m0, v0, k, T):
    return m0 * np.exp(-k * t), v0 * np.exp(-2 * k * t) + T / k * (1 - np.exp(-2 * k * t))


def test_ou_transient_and_time_orders():
    """1D OU, C = k x^2/2, D = T, from N(1, 0.01): mean and variance at t = 0.5, 1 match
    m0 e^{-kt}, v0 e^{-2kt} + T/k (1 - e^{-2kt}) to 1e-4 (TR-BDF2, dt = 0.01); the time
    error of the mean falls at order 1 (backward Euler) and 2 (TR-BDF2), slope +- 0.3."""
    k, T, m0, v0 = 2.0, 0.1, 1.0, 0.01
    grid = sd.Grid([(-1.5, 2.0)], (1400,))
    fp = sd.FokkerPlanck(sd.Loss("k*x**2/2", k=k), temperature=T, grid=grid)
    rho0 = grid.gaussian([m0], [[v0]])
    x = grid.axes[0]
    res = fp.evolve(rho0, 1.0, 0.01, record=[0.5, 1.0], method="tr-bdf2")
    for t, rho in zip(res.t, res.rho):
        m = np.sum(x * rho) * grid.cell_volume
        v = np.sum((x - m) ** 2 * rho) * grid.cell_volume + grid.spacing[0] ** 2 / 12
        m_ex, v_ex = ou_moments(t, m0, v0, k, T)
        assert m == pytest.approx(m_ex, abs=1e-4) and v == pytest.approx(v_ex, abs=1e-4)
    reference = np.sum(x * fp.evolve(rho0, 0.5, 0.5 / 512, method="tr-bdf2").rho[-1]) * grid.cell_volume
    for method, order in (("backward-euler", 1), ("tr-bdf2", 2)):
        dts = [0.05, 0.025, 0.0125]
        errs = [abs(np.sum(x * fp.evolve(rho0, 0.5, dt, method=method).rho[-1]) * grid.cell_volume
                    - reference) for dt in dts]
        assert abs(slope(dts, errs) - order) < 0.3


def test_ou_2d_anisotropic_transient():
    """2D OU with non-commuting H and D: covariance obeys dP/dt = -HP - PH + 2D,
    P(t) = e^{-Ht} P0 e^{-Ht} + int_0^t e^{-Hs} 2D e^{-Hs} ds; at t = 0.4 the computed
    mean to 1e-3 and covariance to 3e-3 relative (second-order space error at 120 x 80)."""
    grid = sd.Grid([(-1.2, 1.2), (-0.8, 0.8)], (120, 80))
    fp = sd.FokkerPlanck(sd.QuadraticModel(hessian=H, noise_covariance=S), diffusion=D, grid=grid)
    P0 = np.diag([0.02, 0.01])
    res = fp.evolve(grid.gaussian([0.3, -0.2], P0), 0.4, 0.005, method="tr-bdf2")
    t = 0.4
    E = linalg.expm(-H * t)
    Pt = E @ P0 @ E + integrate.quad_vec(lambda s: linalg.expm(-H * s) @ (2 * D) @ linalg.expm(-H * s), 0, t)[0]
    mean, cov = moments(grid, res.rho[-1])
    assert mean == pytest.approx(E @ [0.3, -0.2], abs=1e-3)
    assert np.abs(cov - Pt).max() / np.abs(Pt).max() < 3e-3
