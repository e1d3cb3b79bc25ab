"""Stationary statistics against the Lyapunov predictions (docs/theory.md#discrete-lyapunov,
docs/theory.md#continuous-lyapunov)."""

import numpy as np
import pytest

import sdesim as sd
from sdesim.analysis.stationary import (
    lyapunov_covariance,
    stationary_statistics,
    stationary_variance_1d,
    variance_ratio_discrete_sde,
)
from sdesim.errors import ShapeError
from sdesim.result import Result

H2 = np.diag([1.0, 2.0])
S2 = np.array([[1.0, 0.6], [0.6, 2.0]])


def test_1d_closed_forms_match_lyapunov_solvers():
    h, s, lr, B = 3.0, 2.0, 0.3, 4
    for kind in ("discrete", "sde", "modified"):
        assert lyapunov_covariance(h, s, lr, B, kind)[0, 0] == pytest.approx(stationary_variance_1d(h, s, lr, B, kind),
                                                                            rel=1e-12)
    assert stationary_variance_1d(h, s, lr, B, "discrete") / stationary_variance_1d(h, s, lr, B, "sde") == \
        pytest.approx(variance_ratio_discrete_sde(lr, h), rel=1e-12)
    assert variance_ratio_discrete_sde(lr, h) == pytest.approx(2 / (2 - 0.9))
    assert np.isnan(variance_ratio_discrete_sde(1.0, 2.0))
    assert np.isnan(stationary_variance_1d(2.5, 1.0, 1.0, 1, "discrete"))
    qm = sd.QuadraticModel(hessian=H2, noise_covariance=S2)
    for kind in ("discrete", "sde"):
        np.testing.assert_allclose(lyapunov_covariance(qm, None, 0.2, 2, kind), qm.stationary_covariance(0.2, 2, kind))


def _check(stats, P, n_sigma=4.0):
    z = (stats.covariance - P) / stats.covariance_se
    assert np.abs(z).max() < n_sigma, f"z-scores {z}"
    return z


def test_discrete_sgd_matches_discrete_lyapunov_not_sde():
    """SGD on H = diag(1, 4), lr = 0.2, B = 2: 200 particles x 4000 steps, records every 10 after 5%
    burn-in, 4 time batches each (800 groups): every covariance entry within 4 sigma of the discrete
    Lyapunov solution; the SDE prediction (ratio 2/(2 - 0.8) = 1.67 on h = 4) is > 10 sigma off."""
    qm = sd.QuadraticModel(hessian=np.diag([1.0, 4.0]), noise_covariance=S2)
    res = sd.simulate(qm, sd.SGD(lr=0.2, batch_size=2), w0=[0.0, 0.0], n_particles=200, steps=4000,
                      record_every=10, seed=1)
    st = stationary_statistics(res, burn_in=0.05, batches=4)
    assert st.n_groups == 800
    _check(st, lyapunov_covariance(qm, None, 0.2, 2, "discrete"))
    assert np.abs(st.mean / st.mean_se).max() < 4
    sde = lyapunov_covariance(qm, None, 0.2, 2, "sde")
    assert (st.covariance[1, 1] - sde[1, 1]) / st.covariance_se[1, 1] > 10


@pytest.mark.parametrize("modified", [False, True])
def test_sde_matches_continuous_or_modified_lyapunov(modified):
    """Euler-Maruyama (dt = 0.002, O(dt h) = 0.4% bias) on C = x^2/2 + y^2 with Sigma_1 = S, lr = 0.2, B = 2:
    200 particles to t = 50, 800 groups. The plain SDE matches H P + P H = lr S / B, the modified-drift SDE
    matches it with H -> H + lr/2 H^2 (within 4 sigma), and each is > 4 sigma from the other's prediction.
    (The plain SDE runs on the QuadraticModel's linear kernel; the modified drift, which that kernel
    does not take, on the same loss written symbolically.)"""
    if modified:
        loss = sd.Loss("0.5*x**2 + y**2")
        dyn = sd.SGDDiffusion(lr=0.2, batch_size=2, noise="anisotropic", noise_covariance=S2, modified=True)
    else:
        loss = sd.QuadraticModel(hessian=H2, noise_covariance=S2)
        dyn = sd.SGDDiffusion(lr=0.2, batch_size=2, noise="anisotropic")
    res = sd.simulate(loss, dyn, w0=[0.0, 0.0], n_particles=200, t_end=50, dt=0.002, record_every=50, seed=1)
    st = stationary_statistics(res, burn_in=0.1, batches=4)
    right, wrong = ("modified", "sde") if modified else ("sde", "modified")
    _check(st, lyapunov_covariance(H2, S2, 0.2, 2, right))
    z = (st.covariance - lyapunov_covariance(H2, S2, 0.2, 2, wrong)) / st.covariance_se
    assert np.abs(np.diag(z)).min() > 4


def test_standard_errors_of_independent_samples():
    """i.i.d. N(0, P) samples (T = 50, N = 400): the estimates are within 4 standard errors, which agree
    with the Gaussian theory (sd of a variance estimate: sqrt(2) P_ii / sqrt(n)) to 15%."""
    rng = np.random.default_rng(0)
    P = np.array([[2.0, 0.5], [0.5, 1.0]])
    w = rng.multivariate_normal([1.0, -1.0], P, size=(50, 400))
    res = Result(t=np.arange(50.0), w=w, loss=np.zeros((50, 400)))
    st = stationary_statistics(res, burn_in=0.0, batches=5)
    _check(st, P)
    assert np.abs((st.mean - [1, -1]) / st.mean_se).max() < 4
    n = w.shape[0] * w.shape[1]
    np.testing.assert_allclose(np.diag(st.covariance_se), np.sqrt(2) * np.diag(P) / np.sqrt(n), rtol=0.15)


def test_batch_means_on_one_correlated_trajectory():
    """One AR(1) path (phi = 0.9, unit stationary variance, 2e5 steps), 25 batches: the standard error of the
    mean matches sqrt((1 + phi) / (1 - phi) / n) to 50% (the naive i.i.d. value is 4.4x smaller)."""
    rng = np.random.default_rng(3)
    phi, n = 0.9, 200_000
    z = rng.normal(size=n) * np.sqrt(1 - phi ** 2)
    x = np.empty(n)
    x[0] = rng.normal()
    for k in range(1, n):                   # plain loop: 0.1 s
        x[k] = phi * x[k - 1] + z[k]
    res = Result(t=np.arange(float(n)), w=x[:, None, None], loss=np.zeros((n, 1)))
    st = stationary_statistics(res, burn_in=0.0, batches=25)
    theory = np.sqrt((1 + phi) / (1 - phi) / n)
    assert st.mean_se[0] == pytest.approx(theory, rel=0.5)
    assert abs(st.mean[0]) < 4 * theory
    assert st.covariance[0, 0] == pytest.approx(1.0, abs=4 * st.covariance_se[0, 0])


def test_bad_input():
    res = Result(t=np.arange(3.0), w=np.zeros((3, 1, 2)), loss=np.zeros((3, 1)))
    with pytest.raises(ValueError, match="two groups"):
        stationary_statistics(res)
    with pytest.raises(ValueError, match="burn_in"):
        stationary_statistics(res, burn_in=1.0)
    with pytest.raises(ValueError, match="unstable"):
        lyapunov_covariance(np.diag([1.0, 4.0]), np.eye(2), 0.6)
    with pytest.raises(ValueError, match="eigenvalue"):
        lyapunov_covariance(np.diag([1.0, -1.0]), np.eye(2), 0.1, kind="sde")
    with pytest.raises(ValueError, match="kind"):
        lyapunov_covariance(H2, S2, 0.1, kind="ito")
    with pytest.raises(ShapeError):
        lyapunov_covariance(H2, np.eye(3), 0.1)
