"""Gradient signal-to-noise: the minibatch noise variance tr(Sigma_1)/B by Monte Carlo, quadratic closed
forms, and the drift -> diffusion transition along SGD."""

import numpy as np
import pytest

import sdesim as sd
from sdesim.analysis.snr import gradient_noise_trace, gradient_snr, snr_along
from sdesim.analysis.stationary import lyapunov_covariance


@pytest.fixture(scope="module")
def regression():
    rng = np.random.default_rng(0)
    x = rng.normal(size=32)
    return sd.FiniteSumLoss("0.5*(a*x + b - y)**2", params=("a", "b"), data={"x": x, "y": 2 * x - 1 + rng.normal(size=32)})


@pytest.mark.parametrize("replacement", [True, False])
def test_minibatch_noise_variance_matches_trace(regression, replacement):
    """20000 minibatches of B = 4 at w = (0.3, -0.2): mean |g_B - grad C|^2 within 4 se of tr(Sigma_1) / B
    (times (n - B)/(n - 1) without replacement), hence SNR = |grad C|^2 / that."""
    fs, w, B, M = regression, np.array([0.3, -0.2]), 4, 20000
    rng = np.random.default_rng(1)
    idx = (rng.integers(0, fs.n_samples, size=(M, B)) if replacement
           else np.argsort(rng.random((M, fs.n_samples)), axis=1)[:, :B])
    dev = np.sum((fs.minibatch_grad(np.broadcast_to(w, (M, 2)), idx) - fs.grad(w)) ** 2, axis=-1)
    expect = gradient_noise_trace(fs, w) / B * (1 if replacement else (fs.n_samples - B) / (fs.n_samples - 1))
    assert abs(dev.mean() - expect) < 4 * dev.std() / np.sqrt(M)
    assert gradient_snr(fs, w, B, replacement) == pytest.approx(np.sum(fs.grad(w) ** 2) / expect, rel=1e-12)


def test_quadratic_closed_form_and_drift_to_diffusion():
    """SNR = |H w|^2 B / tr S. SGD (lr = 0.1, B = 2) from w = (5, 5): SNR > 100 at the start (drift phase);
    in the stationary state E[SNR] = tr(H P H) B / tr S with P the discrete Lyapunov covariance (< 1:
    diffusion phase), matched within 4 se over 500 particles x 20 late records."""
    H, S = np.diag([1.0, 3.0]), np.array([[1.0, 0.3], [0.3, 0.5]])
    qm = sd.QuadraticModel(hessian=H, noise_covariance=S)
    W = np.array([[1.0, 2.0], [0.0, 0.0]])
    np.testing.assert_allclose(gradient_snr(qm, W, 2), np.sum((W @ H) ** 2, axis=-1) * 2 / 1.5)
    res = sd.simulate(qm, sd.SGD(lr=0.1, batch_size=2), w0=[5.0, 5.0], n_particles=500, steps=400, record_every=10)
    snr = snr_along(res, qm)
    assert snr.shape == res.loss.shape
    assert np.all(snr[0] > 100)
    late = snr[-20:].mean(axis=0)                                   # per-particle means (independent)
    expect = np.trace(H @ lyapunov_covariance(H, S, 0.1, 2, "discrete") @ H) * 2 / np.trace(S)
    assert expect < 1
    assert abs(late.mean() - expect) < 4 * late.std(ddof=1) / np.sqrt(late.size), (late.mean(), expect)


def test_bad_input(regression):
    with pytest.raises(TypeError, match="per-sample"):
        gradient_snr(sd.Loss("x**2 + y**2"), np.zeros(2))
    with pytest.raises(ValueError, match="batch_size"):
        gradient_snr(regression, np.zeros(2), batch_size=0)
    with pytest.raises(ValueError, match="exceeds"):
        gradient_snr(regression, np.zeros(2), batch_size=64, replacement=False)
    res = sd.Result(t=np.zeros(1), w=np.zeros((1, 1, 2)), loss=np.zeros((1, 1)))
    with pytest.raises(ValueError, match="batch_size"):
        snr_along(res, regression)
