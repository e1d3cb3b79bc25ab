"""Circulation of the stationary SGD diffusion: (h1 - h2) P12 with non-commuting noise, zero without
(docs/theory.md#circulation)."""

import numpy as np
import pytest

import sdesim as sd
from sdesim.analysis.circulation import (
    angular_velocity,
    angular_velocity_density,
    angular_velocity_theory,
    stationary_current,
)
from sdesim.analysis.stationary import density_statistics, lyapunov_covariance
from sdesim.errors import ShapeError

H = np.diag([1.0, 3.0])
LR, B = 0.1, 1


def _run(S, seed):
    qm = sd.QuadraticModel(hessian=H, noise_covariance=S)
    P = lyapunov_covariance(H, S, LR, B, "sde")
    w0 = np.random.default_rng(seed).multivariate_normal([0.0, 0.0], P, size=1000)    # start stationary
    res = sd.simulate(qm, sd.SGDDiffusion(lr=LR, batch_size=B, noise="anisotropic"), w0=w0, n_particles=1000,
                      t_end=5, dt=0.002, record_every=1, seed=seed)
    return angular_velocity(res, center=[0.0, 0.0]), P


def test_non_commuting_noise_circulates_as_theory():
    """H = diag(1, 3), S12 = 0.8, lr = 0.1, B = 1: theory (h1 - h2) P12 = -2 * 0.02 = -0.04. 1000 particles
    from the stationary law to t = 5, every step (dt = 0.002, record-interval bias (h1 + h2) dt / 2 = 0.4%):
    within 4 se (se ~ 0.0007), and > 20 se from zero."""
    S = np.array([[1.0, 0.8], [0.8, 1.0]])
    c, P = _run(S, seed=2)
    theory = angular_velocity_theory(H, P)
    assert theory == pytest.approx((1.0 - 3.0) * P[0, 1]) and theory == pytest.approx(-0.04)
    assert abs(c.mean - theory) < 4 * c.se, (c, theory)
    assert abs(c.mean) > 20 * c.se
    assert angular_velocity_theory(H, P, dims=(1, 0)) == pytest.approx(-theory)


def test_fokker_planck_density_circulates_as_theory():
    """The same SDE's Fokker-Planck steady state on 150 x 100 cells: covariance within 1% of the
    continuous Lyapunov P, and int (x1 J2 - x2 J1) within 1% of (h1 - h2) P12."""
    S = np.array([[1.0, 0.8], [0.8, 1.0]])
    qm = sd.QuadraticModel(hessian=H, noise_covariance=S)
    grid = sd.Grid([(-1.2, 1.2), (-0.8, 0.8)], (150, 100))
    fp = sd.FokkerPlanck.from_dynamics(qm, sd.SGDDiffusion(lr=LR, batch_size=B, noise="anisotropic"), grid)
    rho = fp.steady_state()
    P = lyapunov_covariance(H, S, LR, B, "sde")
    mean, cov = density_statistics(grid, rho)
    assert np.abs(mean).max() < 1e-8
    np.testing.assert_allclose(cov, P, rtol=1e-2)
    assert angular_velocity_density(grid, fp.current(rho)) == pytest.approx(angular_velocity_theory(H, P), rel=1e-2)


def test_isotropic_noise_has_no_circulation():
    c, P = _run(np.eye(2), seed=3)
    assert angular_velocity_theory(H, P) == pytest.approx(0.0, abs=1e-15)
    assert abs(c.mean) < 4 * c.se, c


def test_stationary_current_vanishes_iff_commuting():
    W = np.random.default_rng(0).normal(size=(5, 2)) * 0.2
    assert np.abs(stationary_current(H, np.diag([1.0, 2.0]), LR, B, W)).max() < 1e-12
    J = stationary_current(H, np.array([[1.0, 0.8], [0.8, 1.0]]), LR, B, W)
    assert np.abs(J).max() > 1e-2
    # divergence-free: central differences of J at a point
    S = np.array([[1.0, 0.8], [0.8, 1.0]])
    x, e = np.array([0.1, -0.05]), 1e-5
    div = sum((stationary_current(H, S, LR, B, x + e * d) - stationary_current(H, S, LR, B, x - e * d))[i] / (2 * e)
              for i, d in enumerate(np.eye(2)))
    assert abs(div) < 1e-5 * np.abs(J).max() / 0.2


def test_bad_input():
    res = sd.Result(t=np.arange(3.0), w=np.zeros((3, 4, 2)), loss=np.zeros((3, 4)))
    with pytest.raises(ShapeError):
        angular_velocity(res, dims=(0, 0))
    with pytest.raises(ShapeError):
        angular_velocity(res, center=[0.0])
    with pytest.raises(ShapeError):
        angular_velocity_theory(H, np.eye(3))
    with pytest.raises(ShapeError):
        angular_velocity_density(sd.Grid([(-1, 1), (-1, 1)], (4, 4)), np.zeros((4, 4)))
