"""`FokkerPlanck.from_dynamics`: the density of the very SDE the simulator integrates.

Deterministic numerics; tolerances stated per test.
"""

import numpy as np
import pytest
from scipy import integrate, linalg

import sdesim as sd
from sdesim.dynamics.schedules import Step

pytestmark = pytest.mark.filterwarnings("error::UserWarning")


def test_isotropic_sgd_diffusion_is_gibbs_at_lr_over_2b():
    """SGDDiffusion(lr, B, isotropic): D = lr/(2B) I and drift -grad C, so the steady state
    equals FokkerPlanck(loss, temperature=lr/2B) and the Gibbs density (1e-10 in L1)."""
    loss = sd.Loss("(x**2 - 1)**2 + 2*y**2 + 0.5*x*y")
    grid = sd.Grid([(-2.5, 2.5), (-2.5, 2.5)], (100, 100))
    dyn = sd.SGDDiffusion(lr=0.4, batch_size=2)
    fp = sd.FokkerPlanck.from_dynamics(loss, dyn, grid)
    assert fp.temperature == pytest.approx(0.1, rel=1e-14)
    rho = fp.steady_state()
    gibbs = grid.normalize(np.exp(-loss.value(grid.centers) / 0.1))
    assert np.abs(rho - gibbs).sum() * grid.cell_volume < 1e-10


def test_modified_drift_reaches_modified_gibbs():
    """modified=True: drift -grad(C + lr/4 |grad C|^2), steady state exp(-C~/T) (2e-6 in L1
    at 200 cells; fourth-order Simpson link integrals)."""
    loss = sd.Loss("(x**2 - 1)**2")
    grid = sd.Grid([(-2.0, 2.0)], (200,))
    dyn = sd.SGDDiffusion(lr=0.1, batch_size=1, modified=True)
    rho = sd.FokkerPlanck.from_dynamics(loss, dyn, grid).steady_state()
    exact = grid.normalize(np.exp(-loss.modified(0.1).value(grid.centers) / 0.05))
    assert np.abs(rho - exact).sum() * grid.cell_volume < 2e-6


def test_quadratic_model_anisotropic_lyapunov():
    """QuadraticModel with non-commuting H and S, noise='anisotropic': covariance of the
    steady state vs qm.stationary_covariance(lr, B, kind='sde') to 5e-4 relative."""
    H = np.array([[2.0, 0.5], [0.5, 1.0]])
    S = np.array([[1.0, -0.3], [-0.3, 0.5]])
    qm = sd.QuadraticModel(hessian=H, noise_covariance=S, w_star=[0.2, -0.1])
    lr, B = 0.1, 1
    P = qm.stationary_covariance(lr, B, kind="sde")
    grid = sd.Grid([(-0.8, 1.2), (-1.1, 0.9)], (200, 200))
    rho = sd.FokkerPlanck.from_dynamics(qm, sd.SGDDiffusion(lr=lr, batch_size=B, noise="anisotropic"),
                                        grid).steady_state()
    X, r, V = grid.centers.reshape(-1, 2), rho.ravel(), grid.cell_volume
    mean = X.T @ r * V
    cov = ((X - mean).T * r) @ (X - mean) * V + np.diag(grid.spacing**2 / 12)
    assert mean == pytest.approx([0.2, -0.1], abs=1e-6)
    assert np.abs(cov - P).max() / np.abs(P).max() < 5e-4


def test_finite_sum_state_dependent_noise_1d():
    """Linear regression l_i = (a_i w - y_i)^2 / 2 with SGD noise D(w) = lr/(2B) Sigma_1(w):
    zero-flux Ito steady state rho = exp(int b/D) / D (quadrature); L1 error < 5e-5
    (second order: 5.9e-5 at 300 cells, 1.5e-5 at 600)."""
    rng = np.random.default_rng(0)
    a = 1 + 0.3 * rng.standard_normal(64)
    y = 0.5 * a + 0.2 * rng.standard_normal(64)
    fs = sd.FiniteSumLoss("0.5*(a*w - y)**2", params="w", data={"a": a, "y": y})
    dyn = sd.SGDDiffusion(lr=0.5, batch_size=4, noise="anisotropic")
    grid = sd.Grid([(-1.0, 2.0)], (600,))
    fp = sd.FokkerPlanck.from_dynamics(fs, dyn, grid)
    rho = fp.steady_state()
    x = np.linspace(-1.0, 2.0, 60001)
    W = x[:, None]
    b = dyn.drift(fs, W)[:, 0]
    D = dyn.diffusion(fs, W)[:, 0, 0]
    logq = integrate.cumulative_trapezoid(b / D, x, initial=0.0) - np.log(D)
    exact = grid.normalize(np.interp(grid.axes[0], x, np.exp(logq - logq.max())))
    assert np.abs(rho - exact).sum() * grid.cell_volume < 5e-5


def test_schedule_scales_diffusion_in_time():
    """Step schedule (lr halves at t = 0.5) on C = k w^2 / 2: the variance solves
    dv/dt = -2k v + 2 T(t), T(t) = lr(t)/2B; TR-BDF2 with dt = 0.01 matches to 2e-5."""
    k, lr = 2.0, 0.2
    dyn = sd.SGDDiffusion(lr=lr, batch_size=1, schedule=Step(every=0.5, factor=0.5))
    grid = sd.Grid([(-1.5, 1.5)], (1200,))
    fp = sd.FokkerPlanck.from_dynamics(sd.Loss("k*x**2/2", k=k), dyn, grid)
    v0 = 0.01
    res = fp.evolve(grid.gaussian([0.0], [[v0]]), 1.0, 0.01, record=[0.5, 1.0], method="tr-bdf2")
    x = grid.axes[0]

    def relax(v, T, t):
        return v * np.exp(-2 * k * t) + T / k * (1 - np.exp(-2 * k * t))

    v_half = relax(v0, lr / 2, 0.5)
    exact = [v_half, relax(v_half, lr / 4, 0.5)]
    for rho, v_ex in zip(res.rho, exact):
        v = np.sum(x**2 * rho) * grid.cell_volume + grid.spacing[0] ** 2 / 12
        assert v == pytest.approx(v_ex, abs=2e-5)


@pytest.mark.filterwarnings("ignore::sdesim.fokker_planck.BoundaryMassWarning")
def test_lowrank_noise_singular_diffusion_first_order():
    """noise='lowrank' (rank 1): D is singular, the drift across the noise is upwinded,
    so the Lyapunov covariance is reached at first order (slope 1 +- 0.3; 3.2% at 320^2)
    with a non-negative density; a discrete dynamic is refused with a TypeError."""
    H = np.diag([1.0, 3.0])
    qm = sd.QuadraticModel(hessian=H, noise_covariance=np.array([[1.0, 0.5], [0.5, 1.0]]))
    dyn = sd.SGDDiffusion(lr=0.1, batch_size=1, noise="lowrank", rank=1)
    D = dyn.diffusion(qm, np.zeros((1, 2)))[0]
    P = linalg.solve_continuous_lyapunov(H, 2 * D)
    hs, errs = [], []
    for n in (80, 160, 320):
        grid = sd.Grid([(-1.2, 1.2), (-1.2, 1.2)], (n, n))
        rho = sd.FokkerPlanck.from_dynamics(qm, dyn, grid).steady_state()
        assert rho.min() >= 0
        X, r, V = grid.centers.reshape(-1, 2), rho.ravel(), grid.cell_volume
        cov = (X.T * r) @ X * V + np.diag(grid.spacing**2 / 12)
        hs.append(grid.spacing[0])
        errs.append(np.abs(cov - P).max() / np.abs(P).max())
    assert abs(np.polyfit(np.log(hs), np.log(errs), 1)[0] - 1) < 0.3 and errs[-1] < 0.035
    with pytest.raises(TypeError):
        sd.FokkerPlanck.from_dynamics(qm, sd.GD(lr=0.1), grid)
