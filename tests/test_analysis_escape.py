"""Escape times: the simulator against the exact 1D quadrature, the quadrature against Kramers,
basins, censoring (docs/theory.md#escape)."""

import numpy as np
import pytest

import sdesim as sd
from sdesim.analysis.escape import (
    Basins,
    FirstPassage,
    escape_times,
    first_passage_times,
    fit_arrhenius,
    kramers_time,
    mean_escape_time,
    mfpt_1d,
)
from sdesim.errors import ShapeError
from sdesim.result import Result

T = 1 / 3                     # double_well_1d: barrier dC = 1, dC / T = 3


@pytest.fixture(scope="module")
def well():
    return sd.catalog.double_well_1d()


def test_quadrature_tends_to_kramers(well):
    """tau(-1 -> 1) / Kramers -> 1 as T -> 0 (the correction is O(T): below 0.6 T), monotonically;
    the passage to the saddle itself takes half as long; the symmetric well gives equal times both ways."""
    ratios = []
    for temp in (0.2, 0.1, 0.05, 0.02):
        k = kramers_time(well.loss, [-1.0], [0.0], temp)
        assert k == pytest.approx(2 * np.pi / np.sqrt(8 * 4) * np.exp(1 / temp), rel=1e-12)
        ratios.append(mfpt_1d(well.loss, -1, 1, temp) / k)
        assert abs(ratios[-1] - 1) < 0.6 * temp
        assert mfpt_1d(well.loss, -1, 0, temp) / k == pytest.approx(0.5, abs=0.5 * temp)
        assert mfpt_1d(well.loss, 1, -1, temp) == pytest.approx(mfpt_1d(well.loss, -1, 1, temp), rel=1e-10)
    assert np.all(np.diff(ratios) < 0)


def test_quadrature_matches_fokker_planck(well):
    """Backward equation on a 1600-cell grid (target: cells with centre >= 1) agrees to 1e-3."""
    grid = sd.Grid([(-2.2, 2.2)], (1600,))
    tau = sd.FokkerPlanck(well.loss, temperature=T, grid=grid).mean_first_passage_time(lambda c: c[..., 0] >= 1.0)
    x = grid.centers[..., 0]
    i = int(np.argmin(np.abs(x + 1)))
    assert tau[i] == pytest.approx(mfpt_1d(well.loss, x[i], 1.0, T), rel=1e-3)


def test_eyring_kramers_separable_2d_equals_1d(well):
    """C = (x^2 - 1)^2 + y^2: the transverse curvature cancels in sqrt(|det H_b| / det H_a)."""
    loss2 = sd.Loss("(x**2 - 1)**2 + y**2")
    assert kramers_time(loss2, [-1.0, 0.0], [0.0, 0.0], 0.1) == pytest.approx(
        kramers_time(well.loss, [-1.0], [0.0], 0.1), rel=1e-12)
    dw2 = sd.catalog.double_well_2d()
    a, b = dw2.minima[0], dw2.saddles[0]
    ha, hb = dw2.loss.hessian(np.array(a.location)), dw2.loss.hessian(np.array(b.location))
    lam = np.linalg.eigvalsh(hb)[0]
    expect = 2 * np.pi / abs(lam) * np.sqrt(abs(np.linalg.det(hb)) / np.linalg.det(ha)) * np.exp((b.value - a.value) / 0.2)
    assert kramers_time(dw2.loss, a, b, 0.2) == pytest.approx(expect, rel=1e-12)
    with pytest.raises(ValueError, match="saddle"):
        kramers_time(well.loss, [-1.0], [1.0], 0.1)
    with pytest.raises(ValueError, match="minimum"):
        kramers_time(well.loss, [0.0], [0.0], 0.1)


def test_simulated_escape_times_match_quadrature(well):
    """Isotropic SGD diffusion at T = lr/2B = 1/3 (Euler-Maruyama, numba, dt = 0.005, 2000 particles, t <= 150).

    Streaming, every other step: passage to x >= 1 against tau(-1 -> 1) = 26.64; recorded every 10 steps:
    arrival within 0.05 of the other minimum against tau(-1 -> 0.95). Censored runs (~0.1%) by the
    exponential MLE. Each within 4 standard errors (se ~ 2.2%)."""
    dyn = sd.SGDDiffusion(lr=2 * T, batch_size=1)
    assert dyn.temperature() == pytest.approx(T)
    fp = FirstPassage(target=lambda W: W[..., 0] >= 1.0)
    sd.simulate(well.loss, dyn, w0=[-1.0], n_particles=2000, t_end=150, dt=0.005, record_every=2, reducers=[fp],
                keep="final", seed=3, progress=False)
    est = mean_escape_time(**fp.result())
    exact = mfpt_1d(well.loss, -1.0, 1.0, T)
    assert exact == pytest.approx(26.64, abs=0.01)
    assert abs(est.mean - exact) < 4 * est.se, (est, exact)

    res = sd.simulate(well.loss, dyn, w0=[-1.0], n_particles=2000, t_end=150, dt=0.005, record_every=10, seed=4)
    est = mean_escape_time(*escape_times(res, Basins.from_landscape(well), radius=0.05))
    exact = mfpt_1d(well.loss, -1.0, 0.95, T)
    assert abs(est.mean - exact) < 4 * est.se, (est, exact)


def test_2d_escape_matches_fokker_planck_and_tends_to_eyring_kramers():
    """double_well_2d (barrier 1.0315, coupled x-y): 2000 particles of the isotropic SDE at T = 1/3 (dt = 0.005,
    streamed every other step) reach the half-plane x >= x_right after a mean time within 4 se of the
    Fokker-Planck backward equation on 176 x 120 cells (28.97); the latter over Eyring-Kramers is
    1.19, 1.10, 1.04 at T = 1/3, 0.2, 0.1 (within 0.6 T of 1)."""
    dw2 = sd.catalog.double_well_2d()
    a, s = dw2.minima[0], dw2.saddles[0]
    x_right = dw2.minima[1].location[0]
    grid = sd.Grid([(-2.2, 2.2), (-1.5, 1.5)], (176, 120))
    i = np.unravel_index(np.argmin(np.linalg.norm(grid.centers - a.location, axis=-1)), grid.shape)
    taus = {}
    for temp in (T, 0.2, 0.1):
        fp = sd.FokkerPlanck(dw2.loss, temperature=temp, grid=grid)
        taus[temp] = fp.mean_first_passage_time(lambda c: c[..., 0] >= x_right)[i]
        assert abs(taus[temp] / kramers_time(dw2.loss, a, s, temp) - 1) < 0.6 * temp
    passage = FirstPassage(target=lambda W: W[..., 0] >= x_right)
    sd.simulate(dw2.loss, sd.SGDDiffusion(lr=2 * T, batch_size=1), w0=a.location, n_particles=2000, t_end=150,
                dt=0.005, record_every=2, reducers=[passage], keep="final", seed=5, progress=False)
    est = mean_escape_time(**passage.result())
    assert abs(est.mean - taus[T]) < 4 * est.se, (est, taus[T])


def test_arrhenius_fit_recovers_the_barrier(well):
    """Kramers times are exactly Arrhenius (barrier 1, prefactor 2 pi / sqrt(32)); the exact quadrature at
    T = 0.1 .. 0.05 gives the barrier within 0.005; noisy times (5%) within 4 se."""
    temps = np.array([0.1, 0.08, 0.06, 0.05])
    fit = fit_arrhenius(temps, [kramers_time(well.loss, [-1.0], [0.0], t) for t in temps])
    assert fit.barrier == pytest.approx(1.0, abs=1e-12)
    assert fit.prefactor == pytest.approx(2 * np.pi / np.sqrt(32), rel=1e-10)
    assert fit_arrhenius(temps, [mfpt_1d(well.loss, -1, 1, t) for t in temps]).barrier == pytest.approx(1.0, abs=5e-3)
    tau = 2.0 * np.exp(1.0 / temps) * np.exp(0.05 * np.random.default_rng(0).normal(size=4))
    noisy = fit_arrhenius(temps, tau, times_se=0.05 * tau)
    assert abs(noisy.barrier - 1.0) < 4 * noisy.barrier_se
    with pytest.raises(ShapeError):
        fit_arrhenius([0.1], [1.0])
    with pytest.raises(ValueError):
        fit_arrhenius([0.1, -0.1], [1.0, 2.0])


def test_gradient_basins_follow_the_saddle_not_the_midpoint():
    """Tilted well (c = 0.25): saddle at x_b = 0.0627, minima at -1.030 and 0.967 (midpoint -0.031).
    x = 0 lies in the left basin of attraction but is nearer the right minimum."""
    tw = sd.catalog.tilted_double_well_1d(c=0.25)
    xb = tw.maxima[0].location[0]
    grad = Basins.from_landscape(tw, method="gradient")
    near = Basins.from_landscape(tw)
    W = np.array([[-2.0], [0.0], [xb - 1e-3], [xb + 1e-3], [2.5], [np.nan]])
    np.testing.assert_array_equal(grad(W), [0, 0, 0, 1, 1, -1])
    np.testing.assert_array_equal(near(W), [0, 1, 1, 1, 1, -1])
    mb = sd.catalog.muller_brown()
    basins = Basins.from_landscape(mb, method="gradient")
    centers = np.array([m.location for m in mb.minima])
    np.testing.assert_array_equal(basins(centers + 0.02), [0, 1, 2])


def test_first_passage_censoring_and_divergence():
    w = np.array([[0.0, 0.0, 0.0], [0.5, 0.2, np.nan], [1.5, 0.4, np.nan], [0.2, 0.6, np.nan]])[..., None]
    res = Result(t=np.arange(4.0) + 10, w=w, loss=np.zeros((4, 3)), diverged_at=np.array([-1, -1, 1]))
    times, observed = first_passage_times(res, lambda W: W[..., 0] >= 1.0)
    np.testing.assert_array_equal(times, [2.0, 3.0, 0.0])
    np.testing.assert_array_equal(observed, [True, False, False])
    fp = FirstPassage(target=lambda W: W[..., 0] >= 1.0)
    fp.update(res.t[:2], w[:2])
    fp.update(res.t[2:], w[2:])
    np.testing.assert_array_equal(fp.result()["times"], [2.0, 3.0, 3.0])
    with pytest.raises(ShapeError):
        escape_times(res, Basins([[0.0], [1.0]]), start=[0, 1])


def test_mean_escape_time_censored_exponential():
    """Exponential times (tau = 10) censored at 15 (22% censored), n = 5000: the MLE within 4 se;
    the naive mean of the censored data is biased low by > 10 se."""
    rng = np.random.default_rng(0)
    t = rng.exponential(10.0, 5000)
    obs = t < 15.0
    times = np.minimum(t, 15.0)
    est = mean_escape_time(times, obs)
    assert est.method == "exponential" and est.n_observed == obs.sum()
    assert abs(est.mean - 10.0) < 4 * est.se
    assert (10.0 - times.mean()) / est.se > 10
    full = mean_escape_time(t)
    assert full.method == "mean" and abs(full.mean - 10) < 4 * full.se
    assert full.rate == pytest.approx(1 / full.mean)
    with pytest.raises(ValueError, match="censored"):
        mean_escape_time(times, obs, method="mean")
    with pytest.raises(ValueError, match="none"):
        mean_escape_time(times, np.zeros(times.size, bool))


def test_bad_input(well):
    with pytest.raises(ShapeError):
        mfpt_1d(sd.catalog.double_well_2d().loss, 0, 1, 0.1)
    with pytest.raises(ValueError, match="temperature"):
        mfpt_1d(well.loss, -1, 1, 0.0)
    with pytest.raises(ValueError, match="gradient"):
        Basins([[0.0]], method="gradient")
    with pytest.raises(ValueError, match="method"):
        Basins([[0.0]], method="voronoi")
