"""Flows on a fixed step: ``integrator="rk4"`` (classical Runge-Kutta, :class:`sdesim.integrators.RK4`).

- Order: gradient flow on a quadratic has the closed form ``w* + expm(-H t) (w0 - w*)``; the
  error of RK4 at ``t = 1`` against ``dt`` has log-log slope 4 (fitted, +-0.2: the four points
  sit in the asymptotic range, dt |H| <= 0.2).
- Reference: on a nonconvex symbolic loss (and a time-dependent one, and GD's modified flow of
  order 2) RK4 agrees with adaptive Dormand-Prince at rtol 1e-10 to ``100 dt^4`` at ``dt = 0.01``
  (curvatures up to ~20 at the starts), and halving ``dt`` divides the difference by ``2^(4 +- 0.25)``
  (the local order; the reference's own error, ~1e-10, is 1% of the smaller difference).
- The same steps on every CPU backend and on a ``NetworkLoss`` (against the same model as a
  ``FiniteSumLoss``); divergence stops a particle as for the other dynamics.
- Bad input: ``rk4`` on an SDE or GD, an SDE scheme on a flow, raise ``ConfigError``.
"""

import numpy as np
import pytest
from test_net_trajectories import W0, glm_pair

import sdesim as sd
from sdesim.errors import ConfigError
from sdesim.linalg import fit_line

H = np.array([[2.0, 0.3], [0.3, 0.5]])
W_STAR = np.array([0.1, -0.2])
START = np.array([0.9, 0.7])


def closed_form(t):
    lam, U = np.linalg.eigh(H)
    return W_STAR + U @ (np.exp(-lam * t) * (U.T @ (START - W_STAR)))


def test_rk4_is_fourth_order_on_a_quadratic():
    qm = sd.QuadraticModel(hessian=H, w_star=W_STAR)
    dts = np.array([0.1, 0.05, 0.025, 0.0125])
    errors = [np.abs(sd.simulate(qm, sd.GradientFlow(), START, t_end=1.0, dt=dt, integrator="rk4",
                                 backend="numpy").w[-1, 0] - closed_form(1.0)).max() for dt in dts]
    fit = fit_line(np.log(dts), np.log(errors))
    assert abs(fit.slope - 4.0) <= 0.2, (fit.slope, errors)


@pytest.mark.parametrize("loss, dyn", [
    (sd.Loss("(x**2 - 1)**2 + 2*y**2 + 0.5*x*y"), sd.GradientFlow()),
    (sd.Loss("(x**2 - 1)**2 + 2*y**2 + 0.5*x*y"), sd.ModifiedFlow(lr=0.05, order=2)),
    (sd.Loss("(x**2 - 1)**2 + c*x + y**2", c=lambda t: 0.5 * np.sin(4 * t)), sd.GradientFlow()),
], ids=["gradient-flow", "modified-flow", "time-dependent"])
def test_rk4_agrees_with_dopri5_to_dt4(loss, dyn):
    w0 = np.array([[0.3, 0.6], [-1.4, 0.2], [0.05, -0.5]])
    kw = {"n_particles": 3, "t_end": 1.0, "backend": "numpy"}
    ref = sd.simulate(loss, dyn, w0, dt=0.1, **kw).w          # Dopri5 at rtol 1e-10, recorded every 0.1
    diffs = []
    for dt in (0.01, 0.005):
        run = sd.simulate(loss, dyn, w0, dt=dt, record_dt=0.1, integrator="rk4", **kw)
        np.testing.assert_allclose(run.t, np.arange(11) * 0.1, atol=1e-12)
        diffs.append(np.abs(run.w - ref).max())
    assert diffs[0] < 100 * 0.01**4, diffs
    assert abs(np.log2(diffs[0] / diffs[1]) - 4) < 0.25, diffs


@pytest.mark.parametrize("dyn", [sd.GradientFlow(), sd.ModifiedFlow(lr=0.05, order=1)])
def test_rk4_same_numbers_on_every_cpu_backend(sym, qm, dyn):
    for loss in (sym, qm):
        kw = {"n_particles": 4, "t_end": 0.5, "dt": 0.01, "record_every": 10, "integrator": "rk4", "seed": 1}
        w0 = np.linspace(-0.8, 0.9, 4 * loss.dim).reshape(4, loss.dim)
        a = sd.simulate(loss, dyn, w0, backend="numpy", **kw)
        b = sd.simulate(loss, dyn, w0, backend="numba", segment_steps=7, **kw)
        assert np.array_equal(a.w, b.w)
        assert np.abs(a.w[-1] - a.w[0]).max() > 1e-2


def test_rk4_on_a_network_loss():
    """The GLM as a ``NetworkLoss`` (exact gradients and HVPs) and as a ``FiniteSumLoss``: the same RK4 flows."""
    net, fs = glm_pair()
    for dyn in (sd.GradientFlow(), sd.ModifiedFlow(0.4, order=1), sd.ModifiedFlow(0.4, kind="sgd", batch_size=4)):
        a = sd.simulate(net, dyn, W0, t_end=1.5, dt=0.05, integrator="rk4")
        b = sd.simulate(fs, dyn, W0, t_end=1.5, dt=0.05, integrator="rk4", backend="numpy")
        assert np.max(np.abs(a.w - b.w)) < 1e-10, dyn.label
        assert np.abs(a.w[-1] - a.w[0]).max() > 1e-2


def test_rk4_divergence_is_per_particle():
    """``h * 12 x^2`` beyond RK4's stability interval (2.79) at the far starts: those particles blow up and
    stop (NaN from ``diverged_at`` on); the others converge to the minimum ``x = 1``."""
    loss = sd.Loss("(x**2 - 1)**2")
    w0 = np.array([[0.5], [1.5], [4.0], [6.0]])
    res = sd.simulate(loss, sd.GradientFlow(), w0, n_particles=4, t_end=2.0, dt=0.05, integrator="rk4",
                      bound=1e3, on_divergence="ignore", backend="numpy")
    assert list(res.diverged_at[:2]) == [-1, -1] and (res.diverged_at[2:] > 0).all()
    np.testing.assert_allclose(res.w[-1, :2, 0], 1.0, atol=1e-6)
    assert np.isnan(res.w[-1, 2:]).all()


def test_bad_integrator_raises(sym):
    with pytest.raises(ConfigError, match="deterministic flows"):
        sd.simulate(sym, sd.SGDDiffusion(lr=0.1), [0.1, 0.2], t_end=0.1, integrator="rk4")
    with pytest.raises(ConfigError, match="discrete"):
        sd.simulate(sym, sd.GD(lr=0.1), [0.1, 0.2], steps=2, integrator="rk4")
    for name in ("euler_maruyama", "bogus"):
        with pytest.raises(ConfigError, match=r"\['dopri5', 'rk4'\].*does not apply"):
            sd.simulate(sym, sd.GradientFlow(), [0.1, 0.2], t_end=0.1, dt=0.01, integrator=name)
