"""Streaming reducers against closed forms (Ornstein-Uhlenbeck) and against the kept records.

Exact OU steps on a quadratic model ``C = 1/2 (w - w*)^T H (w - w*)`` with isotropic
SGD noise at temperature ``T = lr / 2``: from ``w0`` the state at time ``t`` is Gaussian,
mean ``w* + (w0 - w*) e^{-h t}``, variance ``T / h (1 - e^{-2 h t})`` per eigen-direction.
Monte Carlo tolerances are 4.5 standard errors.
"""

import numpy as np
import pytest
from scipy.stats import norm

import sdesim as sd
from sdesim.analysis.basins import Basins
from sdesim.errors import ConfigError, ShapeError
from sdesim.reducers import BasinCounts, Histogram, RunningMoments

SIGMAS = 4.5
H = np.array([1.0, 4.0])
W_STAR = np.array([0.5, -1.0])
LR = 0.2
T = LR / 2


def ou_run(reducers, keep="all", n=4000, t_end=40.0, record_dt=5.0, w0=W_STAR, backend="numba", seed=1):
    qm = sd.QuadraticModel(hessian=np.diag(H), w_star=W_STAR)
    return sd.simulate(qm, sd.SGDDiffusion(lr=LR), w0, n, t_end=t_end, dt=0.5, record_dt=record_dt,
                       integrator="exact_ou", reducers=reducers, keep=keep, segment_steps=15, seed=seed,
                       backend=backend, progress=False)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_moments_stationary_ou(backend):
    """Stationary mean w* and covariance diag(T / h), pooled over records 5 relaxation times apart
    (correlation e^{-5} < 0.007) at t >= 10; and exactly the sample moments of the kept records."""
    moments = RunningMoments(burn_in=10.0)
    res = ou_run([moments], backend=backend)
    out = res.reduced["moments"]
    x = res.w[res.t >= 10.0].reshape(-1, 2)
    n = len(x)
    assert out["count"] == n == 7 * 4000
    np.testing.assert_allclose(out["mean"], x.mean(axis=0), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(out["covariance"], np.cov(x.T), rtol=1e-10, atol=1e-14)
    var = T / H
    assert np.all(np.abs(out["mean"] - W_STAR) <= SIGMAS * np.sqrt(var / n))
    assert np.all(np.abs(np.diag(out["covariance"]) - var) <= SIGMAS * var * np.sqrt(2 / n))
    assert abs(out["covariance"][0, 1]) <= SIGMAS * np.sqrt(var[0] * var[1] / n)


def test_moments_burn_in_with_no_record():
    with pytest.raises(ConfigError, match="no records"):
        ou_run([RunningMoments(burn_in=100.0)], keep="final", n=10)


def test_histogram_stationary_ou():
    """Bin counts of coordinate 0 at t >= 10 against the stationary Gaussian N(w*_0, T / h_0)."""
    sd0 = np.sqrt(T / H[0])
    edges = W_STAR[0] + sd0 * np.linspace(-3, 3, 13)
    hist = Histogram(edges, coordinate=0, burn_in=10.0)
    res = ou_run([hist], keep="final")
    out = res.reduced["histogram"]
    n = int(out["count"])
    assert n == 7 * 4000
    p = np.diff(norm.cdf(edges, W_STAR[0], sd0))
    assert np.all(np.abs(out["counts"] - n * p) <= SIGMAS * np.sqrt(n * p * (1 - p)))
    np.testing.assert_allclose(out["density"], out["counts"] / (n * np.diff(edges)))


def test_histogram_counts_equal_numpy():
    edges = np.linspace(-2.0, 1.0, 7)
    res = ou_run([Histogram(edges, coordinate=-1)], n=500)
    x = res.w[..., -1].ravel()
    np.testing.assert_array_equal(res.reduced["histogram"]["counts"], np.histogram(x, bins=edges)[0])
    assert res.reduced["histogram"]["count"] == x.size


def test_basin_counts_relaxing_ou():
    """Fractions nearest +-1 along direction 0 of an ensemble relaxing from w0: P(w_0 > w*_0) = 1/2 + ..., the
    Gaussian of mean w*_0 + (w0_0 - w*_0) e^{-h t}, variance T / h (1 - e^{-2 h t}); exactly ``Basins``'s labels."""
    w0 = W_STAR + np.array([0.3, 0.0])
    centers = np.array([[W_STAR[0] - 1.0, W_STAR[1]], [W_STAR[0] + 1.0, W_STAR[1]]])
    basins = BasinCounts(centers)
    res = ou_run([basins], w0=w0, t_end=3.0, record_dt=0.5, n=4000)
    out = res.reduced["basins"]
    np.testing.assert_array_equal(out["t"], res.t)
    labels = Basins(centers)(res.w)
    np.testing.assert_array_equal(out["counts"], np.stack([(labels == k).sum(axis=1) for k in range(2)], axis=1))
    t = res.t[1:]
    mean = 0.3 * np.exp(-H[0] * t)
    sd0 = np.sqrt(T / H[0] * (1 - np.exp(-2 * H[0] * t)))
    p = norm.sf(0.0, mean, sd0)
    n = res.n_particles
    assert np.all(np.abs(out["counts"][1:, 1] - n * p) <= SIGMAS * np.sqrt(n * p * (1 - p)))
    assert np.all(out["counts"][0] == [0, n])          # everyone starts nearest the right centre
    np.testing.assert_allclose(out["fractions"], out["counts"] / n)


def test_basin_counts_skip_diverged():
    """A diverged (NaN) particle is in no basin."""
    loss = sd.Loss("x**2")
    basins = BasinCounts([[0.0]])
    with pytest.warns(sd.errors.DivergenceWarning):
        sd.simulate(loss, sd.GD(lr=1.5), np.array([[1.0], [0.0]]), 2, steps=20, bound=10.0,
                    reducers=[basins], keep="final", progress=False)
    assert basins.result()["counts"][-1].tolist() == [1]


def test_reducer_bad_input():
    with pytest.raises(ShapeError, match="increasing"):
        Histogram([1.0, 0.0])
    with pytest.raises(ShapeError, match="centers"):
        BasinCounts([1.0, 2.0])
    with pytest.raises(ShapeError, match="coordinate 5"):
        Histogram([0.0, 1.0], coordinate=5).update(np.zeros(1), np.zeros((1, 3, 2)))
    with pytest.raises(ShapeError, match="dim 3"):
        BasinCounts(np.zeros((2, 3))).update(np.zeros(1), np.zeros((1, 3, 2)))
    with pytest.raises(ConfigError, match="no records"):
        BasinCounts([[0.0]]).result()


def test_moments_sum_float32_records_in_float64():
    """float32 records (a float32 GPU run) are summed in float64: exactly the moments of the same numbers as
    float64, in two segments (float32 sums of these records are off by ~4e-6 relative in the variances)."""
    rng = np.random.default_rng(3)
    w = (1e3 + rng.normal(size=(4, 5000, 2))).astype(np.float32)
    t = np.arange(4.0)
    single, double = RunningMoments(), RunningMoments()
    for part in (slice(0, 2), slice(2, 4)):
        single.update(t[part], w[part])
        double.update(t[part], w[part].astype(np.float64))
    for key, value in double.result().items():
        np.testing.assert_array_equal(single.result()[key], value)
    assert single.result()["mean"].dtype == np.float64
