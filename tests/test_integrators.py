"""Convergence orders of the SDE integrators, and exact Ornstein-Uhlenbeck steps
(docs/theory.md#step-size-bias).

- Weak orders on linear SDEs are measured without Monte Carlo noise: each
  scheme's step is affine, ``w' = A w + L xi`` (``xi = Z``, or the three-point
  variable for weak-2), with ``A`` and ``L`` read off the integrator's own
  ``step``; the moments of ``w_T`` then follow exactly from moment recursions
  and are compared with the SDE's exact Gaussian moments. Slopes within 0.15.
- Weak orders on a nonlinear SDE by Monte Carlo: the bias of the stationary
  second moment against the Gibbs quadrature (20000 particles, time averages;
  standard error ~2.7e-4 against biases 2e-3 to 4e-2), fitted as
  c1 dt + c2 dt^2 + c3 dt^3: c1 is zero within 5 SE for the order-2 schemes only.
- Strong orders on multiplicative noise, against a fine Milstein reference on
  the same Brownian paths (1000 paths). Slopes within 0.15.
- The simulator's ensembles reproduce the scheme moments within 5 standard errors.
"""

import numpy as np
import pytest
from scipy.linalg import expm, solve_continuous_lyapunov
from scipy.special import ndtri

import sdesim as sd
from sdesim import integrators
from sdesim.errors import ConfigError, ShapeError, UnsupportedError
from sdesim.integrators.base import apply
from sdesim.plan import BoundSDE
from sdesim.integrators.weak2 import three_point

Z = 5.0
SCHEMES = {"euler_maruyama": 1.0, "heun": 2.0, "weak2": 2.0}


def slope(dts, errors):
    return np.polyfit(np.log(dts), np.log(errors), 1)[0]


def noise_map(name):
    """The scheme's increment variable as a function of the standard normal it is given."""
    return three_point if name == "weak2" else (lambda z: z)


def affine_step(integ, sde, dim, r, dt):
    """``(A, L)`` with ``step(W, Z) = W A^T + xi(Z) L^T`` (centre 0), read off ``integ.step``."""
    xi = noise_map(integ.name)
    A = integ.step(sde, np.eye(dim), 0.0, dt, np.zeros((dim, r))).T
    z = np.full((r, r), 0.0)
    np.fill_diagonal(z, 3.0)
    L = integ.step(sde, np.zeros((r, dim)), 0.0, dt, z).T / xi(3.0)
    # the step is affine in (W, xi(Z)): check at random points
    rng = np.random.default_rng(0)
    W, Zs = rng.normal(size=(50, dim)), rng.normal(size=(50, r))
    np.testing.assert_allclose(integ.step(sde, W, 0.0, dt, Zs), W @ A.T + xi(Zs) @ L.T, rtol=1e-12, atol=1e-14)
    return A, L


def test_three_point_variable():
    """P(xi = +-sqrt 3) = 1/6, P(0) = 2/3 through the normal CDF: E xi^2 = 1, E xi^4 = 3 (Gaussian's)."""
    lo, hi = ndtri(1 / 6), ndtri(5 / 6)
    eps = 1e-9
    np.testing.assert_array_equal(three_point(np.array([lo - eps, lo + eps, 0.0, hi - eps, hi + eps])),
                                  [-np.sqrt(3), 0, 0, 0, np.sqrt(3)])
    z = np.random.default_rng(1).normal(size=600_000)
    xi = three_point(z)
    # binomial proportions: 5 standard errors of 1/6 at n = 6e5 is 0.0024
    assert abs(np.mean(xi > 0) - 1 / 6) < 5 * np.sqrt(5 / 36 / z.size)
    assert abs(np.mean(xi < 0) - 1 / 6) < 5 * np.sqrt(5 / 36 / z.size)


# --- weak order, linear SDE, exact moments ----------------------------------------------------
@pytest.fixture(scope="module")
def ou2():
    """2D OU with a non-symmetric-looking coupling: H and S do not commute."""
    H = np.array([[1.5, 0.4], [0.4, 0.6]])
    S = np.array([[1.0, -0.5], [-0.5, 0.8]])
    return sd.QuadraticModel(hessian=H, noise_covariance=S)


def exact_moments_2d(qm, g2, w0, t):
    """Mean and covariance of dw = -H w dt + G dW at time t (G G^T = g2)."""
    E = expm(-qm.H * t)
    P = solve_continuous_lyapunov(qm.H, g2)
    return E @ w0, P - E @ P @ E.T


@pytest.mark.parametrize("name", list(SCHEMES) + ["exact_ou"])
def test_weak_order_linear_2d(ou2, name):
    """Mean and covariance at T = 1 from w0 = (1, -0.5): weak error ~ dt^p."""
    lr, B, T = 0.5, 1, 1.0
    w0 = np.array([1.0, -0.5])
    sde = BoundSDE(ou2, sd.SGDDiffusion(lr=lr, batch_size=B, noise="anisotropic"))
    integ = integrators.get(name)
    mean_x, cov_x = exact_moments_2d(ou2, lr / B * ou2.S, w0, T)
    dts, errs = [], []
    for n in (4, 8, 16, 32, 64):
        A, L = affine_step(integ, sde, 2, sde.n_noise, T / n)
        m, P = w0.copy(), np.zeros((2, 2))
        for _ in range(n):
            m, P = A @ m, A @ P @ A.T + L @ L.T         # E[xi xi^T] = I for every scheme
        dts.append(T / n)
        errs.append(max(np.abs(m - mean_x).max(), np.abs(P - cov_x).max()))
    if name == "exact_ou":
        assert max(errs) < 1e-14
        return
    assert abs(slope(dts, errs) - SCHEMES[name]) < 0.15, (name, errs)
    assert integ.weak_order == SCHEMES[name]


@pytest.mark.parametrize("name", list(SCHEMES) + ["exact_ou"])
def test_declared_affine_step_is_the_step(ou2, name):
    """The affine step an integrator declares, from which the compiled quadratic-model kernels are
    built, is the step it takes: same ``A = I - a K`` and step covariance ``b^2 L L^T``."""
    lr, B, dt = 0.5, 2, 0.1
    sde = BoundSDE(ou2, sd.SGDDiffusion(lr=lr, batch_size=B, noise="anisotropic"))
    integ = integrators.get(name)
    A, L = affine_step(integ, sde, 2, 2, dt)
    step = integ.affine(ou2.H, ou2.hessian_eigenvalues, sde.noise.factor, dt, lr / B)
    a, b = (1.0, 1.0) if step.exact else (dt, np.sqrt(dt * lr / B))
    np.testing.assert_allclose(np.eye(2) - a * step.K, A, rtol=0, atol=1e-14)
    np.testing.assert_allclose(b**2 * step.L @ step.L.T, L @ L.T, rtol=0, atol=1e-14)
    assert step.three_point == (name == "weak2")
    if step.kappa is not None:          # the closed form in H's eigenbasis
        U = ou2.hessian_eigenvectors
        np.testing.assert_allclose(U @ np.diag(step.kappa) @ U.T, step.K, rtol=0, atol=1e-14)


def test_integrators_declare_themselves():
    """Noise types, orders per noise type, and what each refuses, at the plan (before any step)."""
    em, heun, milstein, ou = (integrators.get(n) for n in ("euler_maruyama", "heun", "milstein", "exact_ou"))
    assert em.orders == {"additive": (1.0, 1.0), "multiplicative": (0.5, 1.0)}
    assert heun.needs_additive and not em.needs_additive and ou.needs_quadratic
    assert em.has_affine and ou.has_affine and not milstein.has_affine
    loss = sd.Loss("x**2 + y**2")
    hess = sd.SGDDiffusion(lr=0.1, noise="anisotropic", noise_covariance="hessian")
    with pytest.raises(UnsupportedError, match="additive"):
        sd.simulate(loss, hess, w0=[0.1, 0.2], t_end=0.1, integrator="heun")
    with pytest.raises(UnsupportedError, match="QuadraticModel"):
        sd.simulate(loss, sd.SGDDiffusion(lr=0.1), w0=[0.1, 0.2], t_end=0.1, integrator="exact_ou")
    with pytest.raises(ShapeError, match="diagonal"):
        sd.simulate(loss, hess, w0=[0.1, 0.2], t_end=0.1, integrator="milstein")
    for flow in (sd.GradientFlow(), sd.ModifiedFlow(lr=0.1)):   # flows take adaptive Dormand-Prince steps
        with pytest.raises(ConfigError, match="does not apply"):
            sd.simulate(loss, flow, w0=[0.1, 0.2], t_end=0.1, integrator="milstein")
    with pytest.raises(ConfigError, match="discrete"):
        sd.simulate(loss, sd.GD(lr=0.1), w0=[0.1, 0.2], steps=2, integrator="heun")


@pytest.mark.parametrize("name", list(SCHEMES))
def test_weak_order_fourth_moment_1d(name):
    """E[w_T^4] of a 1D OU from w0 = 1: needs E xi^3 = 0 and E xi^4 = 3 of the increments."""
    h, s, lr, B, T = 1.5, 2.0, 0.5, 1, 1.0
    qm = sd.QuadraticModel(hessian=[[h]], noise_covariance=[[s]])
    sde = BoundSDE(qm, sd.SGDDiffusion(lr=lr, batch_size=B, noise="anisotropic"))
    integ = integrators.get(name)
    mu = np.exp(-h * T)
    var = lr * s / B * (1 - np.exp(-2 * h * T)) / (2 * h)
    m4_exact = mu**4 + 6 * mu**2 * var + 3 * var**2
    dts, errs = [], []
    for n in (4, 8, 16, 32, 64):
        A, L = (float(x.item()) for x in affine_step(integ, sde, 1, 1, T / n))
        m1, m2, m3, m4 = 1.0, 1.0, 1.0, 1.0
        for _ in range(n):
            m1, m2, m3, m4 = (A * m1, A**2 * m2 + L**2, A**3 * m3 + 3 * A * L**2 * m1,
                              A**4 * m4 + 6 * A**2 * L**2 * m2 + 3 * L**4)
        dts.append(T / n)
        errs.append(abs(m4 - m4_exact))
    assert abs(slope(dts, errs) - SCHEMES[name]) < 0.15, (name, errs)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_simulated_moments_are_the_scheme_moments(backend):
    """At dt = 0.25 (4 steps to T = 1) the ensembles of each scheme have the moments of the
    scheme (E w^2, E w^4 within 5 SE, 2e5 particles), which for Euler-Maruyama are many SE
    away from the SDE's."""
    h, s, lr, B, T, n = 1.5, 2.0, 0.5, 1, 1.0, 200_000
    qm = sd.QuadraticModel(hessian=[[h]], noise_covariance=[[s]])
    dyn = sd.SGDDiffusion(lr=lr, batch_size=B, noise="anisotropic")
    sde = BoundSDE(qm, dyn)
    mu = np.exp(-h * T)
    var = lr * s / B * (1 - np.exp(-2 * h * T)) / (2 * h)
    for name in list(SCHEMES) + ["exact_ou"]:
        A, L = (float(x.item()) for x in affine_step(integrators.get(name), sde, 1, 1, 0.25))
        m1, m2, m4 = 1.0, 1.0, 1.0
        for _ in range(4):
            m1, m2, m4 = A * m1, A**2 * m2 + L**2, A**4 * m4 + 6 * A**2 * L**2 * m2 + 3 * L**4
        res = sd.simulate(qm, dyn, w0=[1.0], n_particles=n, t_end=T, dt=0.25, record_every=4,
                          integrator=name, backend=backend, seed=8)
        w = res.w[-1, :, 0]
        for k, theory in ((1, m1), (2, m2), (4, m4)):
            est, se = np.mean(w**k), np.std(w**k) / np.sqrt(n)
            assert abs(est - theory) < Z * se, (name, k, est, theory, se)
        if name == "euler_maruyama":
            assert abs(np.mean(w**2) - (mu**2 + var)) > 20 * np.std(w**2) / np.sqrt(n)


# --- weak order, nonlinear SDE, stationary bias -------------------------------------------------
@pytest.fixture(scope="module")
def gibbs_quartic():
    """C = x^4/4 + x^2/2 at T = lr / 2B = 0.5: E[x^2] under exp(-C/T) by quadrature."""
    x = np.linspace(-8, 8, 400_001)
    p = np.exp(-(x**4 / 4 + x**2 / 2) / 0.5)
    return sd.Loss("x**4/4 + x**2/2"), float(np.sum(x**2 * p) / np.sum(p))


@pytest.mark.parametrize("name", list(SCHEMES))
def test_weak_order_nonlinear_stationary(gibbs_quartic, name):
    """Bias of the stationary E[x^2] of each scheme at dt = 0.2, 0.14, 0.1, 0.07.

    The bias has an expansion c1 dt + c2 dt^2 + c3 dt^3; a weighted least-squares fit
    (weights 1/SE) gives c1 with its standard error. Weak order 2 means c1 = 0: within
    5 SE (measured: weak-2 0.005 +- 0.013, Heun 0.013 +- 0.013), and the pure
    c2 dt^2 + c3 dt^3 model fits (chi^2 with 2 degrees of freedom below 13.8, p = 0.001).
    Euler-Maruyama: c1 = 0.18 +- 0.013, more than 5 SE from zero, and the model
    without a linear term is rejected (chi^2 ~ 170). (A plain log-log slope over this
    range reads 2.3 for the order-2 schemes: the dt^3 term is not negligible at dt = 0.2.)
    """
    loss, ex2 = gibbs_quartic
    dts = np.array([0.2, 0.14, 0.1, 0.07])
    bias, se = [], []
    for dt in dts:
        res = sd.simulate(loss, sd.SGDDiffusion(lr=1.0, batch_size=1), w0=[0.0], n_particles=20000,
                          t_end=42.0, dt=dt, record_every=max(1, round(0.2 / dt)), integrator=name,
                          backend="numba", seed=9)
        per = (res.w[res.t >= 2.0, :, 0] ** 2).mean(axis=0)
        bias.append(per.mean() - ex2)
        se.append(per.std(ddof=1) / np.sqrt(per.size))
    bias, se = np.array(bias), np.array(se)
    X = np.stack([dts, dts**2, dts**3], axis=1) / se[:, None]
    c = np.linalg.lstsq(X, bias / se, rcond=None)[0]
    c1, c1_se = c[0], np.sqrt(np.linalg.inv(X.T @ X)[0, 0])
    _, chi2, *_ = np.linalg.lstsq(X[:, 1:], bias / se, rcond=None)
    if SCHEMES[name] == 2.0:
        assert abs(c1) < Z * c1_se, (name, c1, c1_se, bias, se)
        assert chi2[0] < 13.8, (name, chi2, bias, se)
    else:
        assert c1 > Z * c1_se, (name, c1, c1_se, bias, se)
        assert chi2[0] > 13.8, (name, chi2, bias, se)


# --- strong order, multiplicative noise -------------------------------------------------------
def strong_errors(name, levels, n_paths=1000, fine=4096, T=1.0, seed=10):
    """E|X_T^dt - X_T^ref| on the same Brownian paths; reference: Milstein with T / fine steps.

    SDE: the SGD diffusion with Hessian noise (noise scale 4, lr = B = 1) on
    C = w^2/4 + w^4/20: dw = -(w/2 + w^3/5) dt + sqrt(2 + 2.4 w^2) dW, from w0 = 1.
    The noise dominates the drift, so Euler's O(dt^1/2) error term shows at
    moderate steps (with a stiffer drift its O(dt) drift error hides it until dt ~ 1e-3).
    """
    loss = sd.Loss("0.25*x**2 + 0.05*x**4")
    sde = BoundSDE(loss, sd.SGDDiffusion(lr=1.0, batch_size=1, noise="anisotropic", noise_covariance="hessian",
                                         noise_scale=4.0))
    assert not sde.additive
    dW = np.random.default_rng(seed).normal(size=(fine, n_paths, 1)) * np.sqrt(T / fine)

    def solve(integ, n):
        k = fine // n
        dt = T / n
        W = np.ones((n_paths, 1))
        for i in range(n):
            inc = dW[i * k:(i + 1) * k].sum(axis=0)
            W = integ.step(sde, W, i * dt, dt, inc / np.sqrt(dt))
        return W

    ref = solve(integrators.get("milstein"), fine)
    integ = integrators.get(name)
    return [float(np.mean(np.abs(solve(integ, n) - ref))) for n in levels]


@pytest.fixture(scope="module")
def strong():
    levels = (64, 128, 256)                            # Euler's local slopes 0.69, 0.59, 0.51 from dt = 1/16
    return [1.0 / n for n in levels], {name: strong_errors(name, levels) for name in ("euler_maruyama", "milstein")}


@pytest.mark.parametrize("name,order", [("euler_maruyama", 0.5), ("milstein", 1.0)])
def test_strong_order_multiplicative(strong, name, order):
    dts, errors = strong
    p = slope(dts, errors[name])
    assert abs(p - order) < 0.15, (name, p, errors[name])
    assert integrators.get(name).strong_order == order


def test_milstein_refuses_non_diagonal_noise(ou2):
    sde = BoundSDE(ou2, sd.SGDDiffusion(lr=0.5, noise="anisotropic"))
    with pytest.raises(ValueError, match="diagonal"):
        integrators.get("milstein").step(sde, np.zeros((3, 2)), 0.0, 0.1, np.zeros((3, 2)))


def test_milstein_through_simulate():
    """Milstein runs through ``simulate`` (equal to EM for additive noise); on backend='numba' it
    runs the reference stepper, with the same numbers."""
    loss = sd.Loss("x**4/4 + x**2/2")
    dyn = sd.SGDDiffusion(lr=0.25, batch_size=1)
    a = sd.simulate(loss, dyn, w0=[1.0], n_particles=5, t_end=0.5, integrator="milstein", backend="numpy")
    b = sd.simulate(loss, dyn, w0=[1.0], n_particles=5, t_end=0.5, integrator="euler_maruyama", backend="numpy")
    np.testing.assert_allclose(a.w, b.w, rtol=1e-12, atol=1e-14)
    c = sd.simulate(loss, dyn, w0=[1.0], n_particles=5, t_end=0.5, integrator="milstein", backend="numba")
    np.testing.assert_array_equal(c.w, a.w)
    assert "Milstein" in c.metadata["stepper"]


# --- exact OU -------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_exact_ou_large_steps(ou2, backend):
    """dt = 0.5 (h_max dt ~ 0.9; any dt is exact): mean and full covariance at t = 0.5 ... 3
    match the exact Gaussian law, 40000 particles, 5 SE per number."""
    lr, B, n = 0.5, 1, 40_000
    w0 = np.array([1.0, -0.5])
    res = sd.simulate(ou2, sd.SGDDiffusion(lr=lr, batch_size=B, noise="anisotropic"), w0=w0, n_particles=n,
                      t_end=3.0, dt=0.5, integrator="exact_ou", backend=backend, seed=11)
    for t, w in zip(res.t[1:], res.w[1:]):
        mean_x, cov_x = exact_moments_2d(ou2, lr / B * ou2.S, w0, t)
        mean = w.mean(axis=0)
        assert (np.abs(mean - mean_x) < Z * np.sqrt(np.diag(cov_x) / n)).all()
        d = w - mean_x
        prod = np.einsum("ni,nj->nij", d, d)
        se = prod.std(axis=0) / np.sqrt(n)
        assert (np.abs(prod.mean(axis=0) - cov_x) < Z * se).all(), (t, prod.mean(axis=0), cov_x)


def test_ou_propagators_exact():
    """A = e^{-H dt}, Q = int_0^dt e^{-Hs} G G^T e^{-Hs} ds (quadrature), including a zero eigenvalue."""
    from sdesim.integrators.ou_exact import ou_propagators
    H = np.array([[1.0, 1.0], [1.0, 1.0]])              # eigenvalues 0 and 2
    GGt = np.array([[1.0, 0.3], [0.3, 0.5]])
    dt = 0.7
    A, L = ou_propagators(H, GGt, dt)
    np.testing.assert_allclose(A, expm(-H * dt), atol=1e-14)
    s = (np.arange(2000) + 0.5) * dt / 2000            # midpoint rule, relative error ~1e-7
    lam, U = np.linalg.eigh(H)
    E = np.einsum("ij,sj,kj->sik", U, np.exp(-np.outer(s, lam)), U)    # e^{-H s}, checked at s = dt above
    Q = np.einsum("sij,jk,slk->il", E, GGt, E) * dt / 2000
    np.testing.assert_allclose(L @ L.T, Q, rtol=1e-6)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_exact_ou_with_low_rank_noise(backend):
    """Rank-2 noise in 6 dims: the exact transition spreads it over all directions H mixes.

    Stationary covariance vs the continuous Lyapunov solution; the entries' standard
    error with n = 4000 independent particles is at most sqrt(2 / n) P_max; 5 sigma.
    """
    rng = np.random.default_rng(1)
    A = rng.normal(size=(6, 6))
    model = sd.QuadraticModel(hessian=A @ A.T / 6 + 0.5 * np.eye(6), noise_factor=rng.normal(size=(6, 2)))
    dyn = sd.SGDDiffusion(0.1, 2, noise="anisotropic")
    res = sd.simulate(model, dyn, np.zeros(6), 4000, t_end=40.0, dt=2.0, integrator="exact_ou",
                      backend=backend, record_every=20, seed=3)
    P = model.stationary_covariance(0.1, 2, "sde")
    assert np.abs(np.cov(res.final.T) - P).max() <= 5 * np.sqrt(2 / 4000) * np.abs(P).max()


# --- the worked example of docs/architecture.md ------------------------------------------------
class StochasticMidpoint(integrators.Integrator):
    """w_mid = w + b(w, t) dt/2 + G dW/2;  w' = w + b(w_mid, t + dt/2) dt + G dW."""

    name = "midpoint"
    noise_types = ("additive",)
    orders = {"additive": (1.0, 1.0)}

    def step(self, sde, W, t, dt, Z):
        dW = apply(sde.factor(W, t), np.sqrt(dt) * Z)
        mid = W + 0.5 * dt * sde.drift(W, t) + 0.5 * dW
        return W + dt * sde.drift(mid, t + 0.5 * dt) + dW

    def affine(self, H, eigenvalues, G, dt, amplitude):
        # d' = d - dt (H - dt H^2/2) d + (I - dt H/2) G dW
        kappa = None if eigenvalues is None else eigenvalues - 0.5 * dt * eigenvalues**2
        return integrators.AffineStep(H - 0.5 * dt * H @ H, (np.eye(len(H)) - 0.5 * dt * H) @ G, kappa)


def test_docs_example_integrator(ou2, monkeypatch):
    """An integrator is one class: registered, it runs on every backend (compiled on quadratic
    models from its affine step, which is its step), and the plan refuses what it does not handle."""
    monkeypatch.setitem(integrators.INTEGRATORS, "midpoint", StochasticMidpoint)
    lr, B, dt = 0.5, 2, 0.1
    dyn = sd.SGDDiffusion(lr=lr, batch_size=B, noise="anisotropic")
    sde = BoundSDE(ou2, dyn)
    integ = integrators.get("midpoint")
    A, L = affine_step(integ, sde, 2, 2, dt)
    step = integ.affine(ou2.H, ou2.hessian_eigenvalues, sde.noise.factor, dt, lr / B)
    np.testing.assert_allclose(np.eye(2) - dt * step.K, A, rtol=0, atol=1e-14)
    np.testing.assert_allclose(dt * lr / B * step.L @ step.L.T, L @ L.T, rtol=0, atol=1e-14)
    kw = dict(w0=[1.0, -0.5], n_particles=9, t_end=1.0, dt=dt, integrator="midpoint", seed=4)
    a = sd.simulate(ou2, dyn, backend="numpy", **kw)
    b = sd.simulate(ou2, dyn, backend="numba", **kw)
    assert b.metadata["stepper"] == "compiled"
    np.testing.assert_allclose(b.w, a.w, rtol=0, atol=1e-12)
    quartic = sd.Loss("x**4/4 + x**2/2")
    c = sd.simulate(quartic, sd.SGDDiffusion(lr=0.5), w0=[1.0], t_end=0.5, integrator="midpoint")
    assert c.metadata["stepper"].startswith("NumPy reference")
    with pytest.raises(UnsupportedError, match="additive"):
        sd.simulate(quartic, sd.SGDDiffusion(lr=0.5, noise="anisotropic", noise_covariance="hessian"),
                    w0=[1.0], t_end=0.5, integrator="midpoint")
