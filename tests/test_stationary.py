"""Stationary statistics of SGD and of the SGD diffusion against closed forms
(docs/theory.md#discrete-lyapunov, docs/theory.md#continuous-lyapunov, docs/theory.md#circulation).

Statistics: every estimate is a time average over the recorded states of one
particle after burn-in, then a mean over independent particles; its standard
error is the spread of the per-particle averages over ``sqrt(N)``, which
accounts for the autocorrelation along each trajectory without modelling it.
Means are known exactly (``w*``), so second moments about ``w*`` are used.
Tolerances are ``Z = 5`` standard errors per compared number (fixed seeds;
a correct simulator fails a given comparison with probability ~6e-7).
"""

import numpy as np
import pytest
from scipy.linalg import solve_continuous_lyapunov, solve_discrete_lyapunov

import sdesim as sd

Z = 5.0


def second_moments(w, center):
    """Per-particle time averages of ``(w - c)(w - c)^T``: mean ``(dim, dim)`` and standard error."""
    d = w - center                                    # (T, N, dim)
    per = np.einsum("tni,tnj->nij", d, d) / d.shape[0]
    return per.mean(axis=0), per.std(axis=0, ddof=1) / np.sqrt(per.shape[0])


def assert_within(estimate, se, expected, z=Z, extra=0.0):
    estimate, se, expected = map(np.asarray, (estimate, se, expected))
    dev = np.abs(estimate - expected)
    assert (dev <= z * se + extra).all(), (
        f"estimate {estimate} vs theory {expected}: {dev / se} standard errors (allowed {z}, extra {extra})")


# --- 1D finite-sum quadratic ------------------------------------------------------------
# per-sample loss l_i = h/2 (w - x_i)^2 with standardised data (mean 0, population
# variance 1): grad l_i - grad C = -h x_i, so the per-sample gradient variance is s = h^2.
H1, LR1, B1 = 2.0, 0.1, 2
_X = np.array([-1.5, -1.0, -0.4, 0.0, 0.2, 0.5, 1.0, 1.2])
X1 = (_X - _X.mean()) / _X.std()
S1 = H1**2


@pytest.fixture(scope="module")
def fs1():
    return sd.FiniteSumLoss("0.5*h*(w - x)**2", params=("w",), data={"x": X1}, h=H1)


def epoch_variance(batch_cov):
    r"""Exact variance of SGD without replacement at each position ``p`` of an epoch (stationary).

    With ``a = 1 - lr h``, ``w_{k+1} = a w_k + lr h xi_k`` where ``xi_k`` is the mean of
    the data in batch ``k``; within an epoch the ``xi`` are correlated (``batch_cov``,
    ``m x m``), across epochs independent. So the state is cyclostationary:
    ``V_p = a^{2p} V_0 + (lr h)^2 c_p^T Cov c_p``, ``c_{p,j} = a^{p-1-j}``, with
    ``V_0 = V_m``.
    """
    a, m = 1 - LR1 * H1, batch_cov.shape[0]
    c = lambda p: a ** (p - 1 - np.arange(p))
    v0 = (LR1 * H1) ** 2 * c(m) @ batch_cov @ c(m) / (1 - a ** (2 * m))
    return np.array([a ** (2 * p) * v0 + (LR1 * H1) ** 2 * c(p) @ batch_cov[:p, :p] @ c(p) for p in range(m)])


def sgd_by_position(fs1, sampling, n=4000, burn=100, steps=900, every=5, seed=1):
    """Per-particle time averages of w^2 at each position p = k mod m of the epoch."""
    res = sd.simulate(fs1, sd.SGD(lr=LR1, batch_size=B1, sampling=sampling), w0=[0.0], n_particles=n,
                      steps=steps, record_every=every, backend="numba", seed=seed)
    k = np.round(res.t / LR1).astype(int)
    keep = k >= burn                                   # 0.8^100 ~ 2e-10: forgotten
    w, k = res.w[keep, :, 0], k[keep]
    m = len(X1) // B1
    out = []
    for p in range(m):                                 # every = 5 is coprime with m = 4
        per = (w[k % m == p] ** 2).mean(axis=0)
        out.append((per.mean(), per.std(ddof=1) / np.sqrt(n)))
    per = (w**2).mean(axis=0)
    return np.array(out), (per.mean(), per.std(ddof=1) / np.sqrt(n))


def test_sgd_replacement_1d(fs1):
    """With replacement: P = lr s / (B h (2 - lr h)) exactly, at every step."""
    theory = LR1 * S1 / (B1 * H1 * (2 - LR1 * H1))     # 0.0556
    by_pos, (est, se) = sgd_by_position(fs1, "replacement")
    assert_within(est, se, theory)
    assert_within(by_pos[:, 0], by_pos[:, 1], theory)
    # and it is not the SDE's lr s / (2 B h) = 0.05: the 2 / (2 - lr h) = 1.11 correction is resolved
    assert abs(est - LR1 * S1 / (2 * B1 * H1)) > 20 * se


def test_sgd_without_replacement_1d(fs1):
    """Shuffle and fixed batches: exact cyclostationary variances.

    The with-replacement formula times (n - B) / (n - 1) assumes independent minibatches;
    within an epoch the batch means sum to zero, which cancels most of the noise:
    here (n = 8, B = 2, lr h = 0.2) it predicts 0.0476 while shuffling gives a mean
    variance over the epoch of 0.0143 (0.0037 at the start of an epoch, where the noise
    of the last epoch has cancelled, up to 0.0205), fixed batches 0.0319.
    """
    n, m = len(X1), len(X1) // B1
    # shuffle: batch means of a random permutation: Var = (1/B)(n - B)/(n - 1), Cov = -1/(n - 1)
    cov = np.full((m, m), -1.0 / (n - 1))
    np.fill_diagonal(cov, (n - B1) / (B1 * (n - 1)))
    theory = epoch_variance(cov)
    by_pos, (est, se) = sgd_by_position(fs1, "shuffle")
    assert_within(by_pos[:, 0], by_pos[:, 1], theory)
    assert_within(est, se, theory.mean())
    naive = LR1 * S1 / (B1 * H1 * (2 - LR1 * H1)) * (n - B1) / (n - 1)
    assert est < 0.5 * naive
    # fixed batches in random order: a random permutation of m fixed batch means mu_k (sum 0)
    mu = X1.reshape(m, B1).mean(axis=1)
    v = np.mean(mu**2)
    cov = np.full((m, m), -v / (m - 1))
    np.fill_diagonal(cov, v)
    theory = epoch_variance(cov)
    by_pos, (est, se) = sgd_by_position(fs1, "fixed")
    assert_within(by_pos[:, 0], by_pos[:, 1], theory)
    assert_within(est, se, theory.mean())


def test_sde_1d_finite_sum(fs1):
    """The SGD diffusion with the data's noise, by Euler-Maruyama: stationary variance
    g^2 / (h (2 - h dt)) with g^2 = lr s / B (exact for the scheme), -> lr s / (2 B h) as dt -> 0."""
    dt, n = LR1 / 10, 4000
    dyn = sd.SGDDiffusion(lr=LR1, batch_size=B1, noise="anisotropic")
    res = sd.simulate(fs1, dyn, w0=[0.0], n_particles=n, t_end=12.0, dt=dt, record_every=20,
                      backend="numba", seed=2)
    w = res.w[res.t >= 2.0]                             # relaxation time of w^2: 1 / (2h) = 0.25
    est, se = second_moments(w, 0.0)
    em = LR1 * S1 / B1 / (H1 * (2 - H1 * dt))
    sde = LR1 * S1 / (2 * B1 * H1)                      # 0.05; the EM bias is 1%, ~2 SE
    assert_within(est, se, em)
    assert_within(est, se, sde, extra=abs(em - sde))


def test_exact_ou_1d():
    """Exact OU steps (dt = 1 here, beyond Euler's stability at h dt = 2): lr s / (2 B h) exactly."""
    qm = sd.QuadraticModel(hessian=[[H1]], noise_covariance=[[S1]])
    res = sd.simulate(qm, sd.SGDDiffusion(lr=LR1, batch_size=B1, noise="anisotropic"), w0=[1.0],
                      n_particles=20000, t_end=30.0, dt=1.0, integrator="exact_ou", backend="numba", seed=3)
    est, se = second_moments(res.w[res.t >= 10.0], 0.0)
    assert_within(est, se, LR1 * S1 / (2 * B1 * H1))


# --- quadratic models with anisotropic noise -----------------------------------------------
def rotation(dim, seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(dim, dim)))
    return q


@pytest.fixture(scope="module")
def qm3():
    """3D: H with eigenvalues (4, 1.5, 0.5) in a rotated basis, S not commuting with H."""
    U = rotation(3, 0)
    H = U @ np.diag([4.0, 1.5, 0.5]) @ U.T
    S = np.array([[1.0, 0.6, -0.3], [0.6, 0.8, 0.2], [-0.3, 0.2, 0.5]])
    assert np.abs(H @ S - S @ H).max() > 0.1
    return sd.QuadraticModel(hessian=H, noise_covariance=S, w_star=[0.5, -0.3, 0.2])


@pytest.mark.parametrize("lr", [0.05, 0.3])
def test_sgd_discrete_lyapunov(qm3, lr):
    """SGD's ensemble covariance: P = A P A^T + lr^2 S / B, off-diagonal terms included.

    At lr = 0.3 (lr h_max = 1.2) the SDE's continuous Lyapunov solution is off by
    ~50%; the discrete one is exact."""
    B, n = 4, 4000
    steps = round(40 / (lr * 0.5))                 # 40 relaxation times of the slowest mode
    res = sd.simulate(qm3, sd.SGD(lr=lr, batch_size=B), w0=qm3.w_star, n_particles=n, steps=steps,
                      record_every=max(1, steps // 200), backend="numba", seed=4)
    burn = res.t >= 0.25 * res.t[-1]
    est, se = second_moments(res.w[burn], qm3.w_star)
    P = qm3.stationary_covariance(lr, B, "discrete")
    assert_within(est, se, P)
    # the prediction checks off-diagonal terms: they are not small against their errors
    assert (np.abs(P) > 10 * se).all()
    if lr == 0.3:
        Pc = qm3.stationary_covariance(lr, B, "sde")
        assert (np.abs(est - Pc) > Z * se).any()


def test_sgd_momentum_lyapunov(qm3):
    """Heavy-ball SGD: the state (d, v) is linear, so its covariance solves a 6D discrete Lyapunov equation."""
    lr, mu, B, n = 0.05, 0.5, 4, 4000
    dim = 3
    H, S = qm3.H, qm3.S
    # v' = mu v - lr (H d + xi), d' = d + v'
    A = np.block([[np.eye(dim) - lr * H, mu * np.eye(dim)], [-lr * H, mu * np.eye(dim)]])
    Gn = np.vstack([-lr * np.eye(dim), -lr * np.eye(dim)])
    P = solve_discrete_lyapunov(A, Gn @ (S / B) @ Gn.T)[:dim, :dim]
    res = sd.simulate(qm3, sd.SGD(lr=lr, batch_size=B, momentum=mu), w0=qm3.w_star, n_particles=n,
                      steps=2000, record_every=10, backend="numba", seed=5)
    est, se = second_moments(res.w[res.t >= 25.0], qm3.w_star)
    assert_within(est, se, P)


@pytest.mark.parametrize("integrator", ["exact_ou", "euler_maruyama"])
def test_sde_continuous_lyapunov(qm3, integrator):
    """The SDE's ensemble covariance solves H P + P H = (lr / B) S.

    exact_ou is exact at any dt (dt = 0.5 here). Euler-Maruyama's stationary
    covariance solves the discrete Lyapunov equation of its own step,
    P = (I - dt H) P (I - dt H)^T + dt (lr/B) S: checked to MC precision, and its
    O(dt) distance to the continuous solution (at dt = 0.005: below 1% of P, up to 3.6 SE) is
    added to the tolerance against the continuous one."""
    lr, B, n = 0.2, 2, 4000
    dt = 0.5 if integrator == "exact_ou" else 0.005
    dyn = sd.SGDDiffusion(lr=lr, batch_size=B, noise="anisotropic")
    res = sd.simulate(qm3, dyn, w0=qm3.w_star, n_particles=n, t_end=60.0, dt=dt,
                      record_every=max(1, round(0.5 / dt)), integrator=integrator, backend="numba", seed=6)
    est, se = second_moments(res.w[res.t >= 10.0], qm3.w_star)
    Pc = solve_continuous_lyapunov(qm3.H, lr / B * qm3.S)
    np.testing.assert_allclose(qm3.stationary_covariance(lr, B, "sde"), Pc, rtol=1e-12, atol=1e-15)
    bias = 0.0
    if integrator == "euler_maruyama":
        A = np.eye(3) - dt * qm3.H
        P_em = solve_discrete_lyapunov(A, dt * lr / B * qm3.S)
        assert_within(est, se, P_em)
        bias = np.abs(P_em - Pc)
        assert (bias < 0.01 * np.abs(Pc).max()).all()  # within 1%: the comparison is not vacuous
    assert_within(est, se, Pc, extra=bias)


# --- circulation of the non-equilibrium steady state ----------------------------------------
@pytest.mark.parametrize("S12", [0.6, 0.0])
def test_mean_angular_velocity(S12):
    """E[w1 dw2 - w2 dw1] / dt = (h1 - h2) P12 for diagonal H (zero when S commutes with H).

    With Euler-Maruyama the identity is exact for the scheme's stationary covariance
    (E[w1 (-h2 w2 dt + n2) - w2 (-h1 w1 dt + n1)] = (h1 - h2) E[w1 w2] dt, the Ito noise
    having mean zero), with P_EM from EM's discrete Lyapunov equation (dt = 0.01). The
    per-step estimator has standard deviation ~0.5 (the noise terms over dt) against a
    signal of 0.036, so it is averaged over 2e6 particle-steps."""
    h = np.array([2.0, 0.5])
    S = np.array([[1.0, S12], [S12, 1.0]])
    lr, B, dt, n = 0.1, 1, 0.01, 1000
    qm = sd.QuadraticModel(hessian=np.diag(h), noise_covariance=S)
    res = sd.simulate(qm, sd.SGDDiffusion(lr=lr, batch_size=B, noise="anisotropic"), w0=[0.0, 0.0],
                      n_particles=n, t_end=25.0, dt=dt, record_every=1, backend="numba", seed=7)
    w = res.w[res.t >= 5.0]                             # slowest relaxation 1 / 0.5 = 2
    dw = np.diff(w, axis=0)
    rate = (w[:-1, :, 0] * dw[:, :, 1] - w[:-1, :, 1] * dw[:, :, 0]) / dt   # (T, N)
    per = rate.mean(axis=0)
    est, se = per.mean(), per.std(ddof=1) / np.sqrt(n)
    A = np.eye(2) - dt * np.diag(h)
    P_em = solve_discrete_lyapunov(A, dt * lr / B * S)
    theory = (h[0] - h[1]) * P_em[0, 1]
    assert_within(est, se, theory)
    P = qm.stationary_covariance(lr, B, "sde")
    assert theory == pytest.approx((h[0] - h[1]) * P[0, 1], abs=0.01 * abs(P[0, 0]))
    if S12:
        assert abs(est) > 10 * se                       # the current is resolved
        # P^{-1} (the stationary potential) is not proportional to H: not an equilibrium
        assert abs(np.linalg.inv(P)[0, 1]) > 0.1


def test_nudged_sgd_lyapunov(qm3):
    """Nudged SGD scales the step along the top-k Hessian eigenvectors U_k by f:
    d' = d - lr N (H d + xi), N = I - (1 - f) U_k U_k^T, so P = A P A^T + lr^2 N S N / B, A = I - lr N H."""
    lr, B, n, k, f = 0.3, 4, 4000, 1, 0.25
    _, U = np.linalg.eigh(qm3.H)
    Uk = U[:, -k:]
    Nm = np.eye(3) - (1 - f) * Uk @ Uk.T
    P = solve_discrete_lyapunov(np.eye(3) - lr * Nm @ qm3.H, lr**2 / B * Nm @ qm3.S @ Nm)
    res = sd.simulate(qm3, sd.SGD(lr=lr, batch_size=B, nudge_k=k, nudge_factor=f), w0=qm3.w_star,
                      n_particles=n, steps=800, record_every=4, backend="numba", seed=14)
    w = res.w[res.t >= 60.0]
    est, se = second_moments(w, qm3.w_star)
    assert_within(est, se, P)
    # nudging changes the answer: along the top direction plain SGD's variance is many SE away
    top, top_se = second_moments((w - qm3.w_star) @ Uk, 0.0)
    plain = qm3.stationary_covariance(lr, B, "discrete")
    assert_within(top, top_se, Uk.T @ P @ Uk)
    assert (np.abs(top - Uk.T @ plain @ Uk) > 10 * top_se).all()


def test_lowrank_sde_lyapunov(qm3):
    """noise="lowrank", rank=1: H P + P H = (lr / B) S_1 with S_1 the top eigenpair of S (exact OU steps)."""
    lr, B, n = 0.2, 2, 4000
    mu, V = np.linalg.eigh(qm3.S)
    S1 = mu[-1] * np.outer(V[:, -1], V[:, -1])
    res = sd.simulate(qm3, sd.SGDDiffusion(lr=lr, batch_size=B, noise="lowrank", rank=1), w0=qm3.w_star,
                      n_particles=n, t_end=60.0, dt=0.5, integrator="exact_ou", backend="numba", seed=15)
    est, se = second_moments(res.w[res.t >= 10.0], qm3.w_star)
    assert_within(est, se, solve_continuous_lyapunov(qm3.H, lr / B * S1))


@pytest.mark.parametrize("kind", ["sgd", "sde"])
def test_schedule_sets_the_temperature(kind):
    """A step schedule (lr x 1/4 at t = 10): the stationary variance follows lr(t).

    SGD: lr s / (B h (2 - lr h)) at lr = 0.1, then 0.025; the SDE (exact OU steps, the
    noise frozen over each step of dt = 0.1 dividing the switch time): lr s / (2 B h).
    20000 independent particles at t = 10 and t = 20 (8 relaxation times after the switch).
    """
    h, s, lr, B, n = 2.0, 4.0, 0.1, 2, 20000
    qm = sd.QuadraticModel(hessian=[[h]], noise_covariance=[[s]])
    schedule = sd.schedules.Step(every=10.0, factor=0.25)
    if kind == "sgd":
        res = sd.simulate(qm, sd.SGD(lr=lr, batch_size=B, schedule=schedule), w0=[0.0], n_particles=n,
                          steps=200, record_every=100, backend="numba", seed=16)
        theory = [lr_ * s / (B * h * (2 - lr_ * h)) for lr_ in (lr, lr / 4)]
    else:
        res = sd.simulate(qm, sd.SGDDiffusion(lr=lr, batch_size=B, noise="anisotropic", schedule=schedule),
                          w0=[0.0], n_particles=n, t_end=20.0, dt=0.1, record_every=100, integrator="exact_ou",
                          backend="numba", seed=16)
        theory = [lr_ * s / (2 * B * h) for lr_ in (lr, lr / 4)]
    np.testing.assert_allclose(res.t, [0.0, 10.0, 20.0], atol=1e-12)
    for w, expected in zip(res.w[1:], theory):
        x2 = w[:, 0] ** 2
        assert_within(x2.mean(), x2.std(ddof=1) / np.sqrt(n), expected)
