"""Real networks as losses (``NetworkLoss``), their trajectories against the flows, and their
transients against the extracted model (``sdesim.nets.trajectories``, ``sdesim.nets.transients``).

Exact references: a generalised linear model ``l_i = phi(x_i . w - y_i)`` written both as an
``Objective`` and as a symbolic ``FiniteSumLoss`` (same minibatches, same fields), and a
per-sample quadratic ``l_i = 1/2 (w - x_i)^T A (w - x_i)`` whose SGD noise is constant.
"""

import numpy as np
import pytest

import sdesim as sd
from sdesim.plan import resolve
from sdesim.errors import ConfigError, LossKindError, SdesimError, ShapeError
from sdesim.nets import MLP, NetworkLoss
from sdesim.nets.objective import MLPObjective, Objective

PHI = {  # phi, phi', phi''
    "square": (lambda r: 0.5 * r * r, lambda r: r, lambda r: np.ones_like(r)),
    "logcosh": (lambda r: np.log(np.cosh(r)), np.tanh, lambda r: 1.0 - np.tanh(r) ** 2),
}
EXPR = {"square": "0.5*(w0*x0 + w1*x1 - y)**2", "logcosh": "log(cosh(w0*x0 + w1*x1 - y))"}


class GLMObjective(Objective):
    """``C_S(w) = mean_{i in S} phi(x_i . w - y_i)``, exact derivatives."""

    def __init__(self, x, y, phi="logcosh"):
        self.x, self.y = np.asarray(x, float), np.asarray(y, float)
        self.f, self.df, self.d2f = PHI[phi]
        self.n_samples, self.n_params = self.x.shape

    def _r(self, w, idx):
        x = self.x if idx is None else self.x[idx]
        y = self.y if idx is None else self.y[idx]
        return x, x @ w - y

    def loss(self, w, idx=None):
        return float(np.mean(self.f(self._r(w, idx)[1])))

    def grad(self, w, idx=None):
        x, r = self._r(w, idx)
        return x.T @ self.df(r) / len(r)

    def hvp(self, w, v, idx=None):
        x, r = self._r(w, idx)
        return x.T @ (self.d2f(r) * (x @ v)) / len(r)

    def per_sample_grads(self, w, idx):
        x, r = self._r(w, idx)
        return self.df(r)[:, None] * x


def glm_pair(phi="logcosh", n=24, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2))
    y = x @ np.array([0.7, -0.4]) + 0.5 * rng.standard_normal(n)
    return NetworkLoss(GLMObjective(x, y, phi)), sd.FiniteSumLoss(EXPR[phi], ["w0", "w1"], {"x": x, "y": y})


W0 = np.array([1.5, 0.8])


def test_gd_through_simulate_is_the_hand_written_loop():
    net, _ = glm_pair()
    res = sd.simulate(net, sd.GD(0.3), W0, steps=25)
    w, path = W0.copy(), [W0.copy()]
    for _ in range(25):
        w = w - 0.3 * net.objective.grad(w)
        path.append(w)
    assert np.array_equal(res.w[:, 0], np.array(path))
    assert "reference" in res.metadata["stepper"] and "network" in res.metadata["stepper"]


@pytest.mark.parametrize("sampling", ["replacement", "shuffle", "fixed"])
def test_sgd_draws_the_minibatches_of_a_finite_sum(sampling):
    """Same seed, same minibatches: the network's SGD ensemble equals the compiled finite-sum
    kernels' (indices drawn inside the kernel from the same counters) to rounding."""
    net, fs = glm_pair()
    dyn = sd.SGD(0.2, batch_size=6, sampling=sampling)
    a = sd.simulate(net, dyn, W0, n_particles=3, steps=17, seed=5)
    b = sd.simulate(fs, dyn, W0, n_particles=3, steps=17, seed=5, backend="numba")
    assert np.max(np.abs(a.w - b.w)) < 1e-12
    assert not np.array_equal(a.w[-1, 0], a.w[-1, 1])          # distinct particles, distinct batches


def test_loss_contract_matches_the_finite_sum():
    net, fs = glm_pair()
    W = np.array([[0.3, -1.2], [1.5, 0.8]])
    for name in ("value", "grad", "hessian", "noise_covariance_at"):
        assert np.allclose(getattr(net, name)(W), getattr(fs, name)(W), rtol=1e-12, atol=1e-14), name
    idx = np.array([[0, 3, 5], [7, 7, 1]])
    assert np.allclose(net.minibatch_grad(W, idx), fs.minibatch_grad(W, idx), rtol=1e-12, atol=1e-14)


@pytest.fixture(scope="module")
def small():
    """Eight samples: the symbolic order-2 field of their sum is quick to build."""
    return glm_pair(n=8)


def test_modified_drifts_are_exact(small):
    """Order 1 is ``grad + lr/2 H grad`` (exact HVP); order 2 and Smith et al.'s SGD field match the
    symbolic fields of the same finite sum. Order 2's third derivative is a difference of HVPs:
    held to 1e-6 of its lr^2 term (the docstring's bound is ~1e-10)."""
    net, fs = small
    lr, W = 0.4, np.array([[0.3, -1.2], [1.5, 0.8]])
    obj = net.objective
    d1 = sd.ModifiedFlow(lr, order=1).drift(net, W)
    want = np.stack([-(obj.grad(w) + lr / 2 * obj.hvp(w, obj.grad(w))) for w in W])
    assert np.array_equal(d1, want)
    assert np.allclose(d1, sd.ModifiedFlow(lr, order=1).drift(fs, W), rtol=1e-12, atol=1e-14)
    d2, s2 = sd.ModifiedFlow(lr, order=2).drift(net, W), sd.ModifiedFlow(lr, order=2).drift(fs, W)
    assert np.max(np.abs(d2 - s2)) < 1e-6 * np.max(np.abs(s2 - d1))
    sgd = sd.ModifiedFlow(lr, kind="sgd", batch_size=4)
    assert np.allclose(sgd.drift(net, W), sgd.drift(fs, W), rtol=1e-12, atol=1e-14)


def test_mlp_modified_drifts_use_the_fused_pass():
    """On the MLP the order-1 and SGD modified drifts come from ``grad_and_hvp`` (one forward and
    backward pass for ``g`` and ``H g``) and equal the separate ``grad`` then ``hvp`` formulas to
    rounding (1e-13 relative)."""
    rng = np.random.default_rng(3)
    mlp = MLP((4, 6, 3), activation="gelu", weight_decay=0.01)
    obj = MLPObjective(mlp, rng.standard_normal((12, 4)), rng.integers(0, 3, 12))
    net, lr = NetworkLoss(obj), 0.3
    W = mlp.init(1) + 0.1 * rng.standard_normal((2, mlp.n_params))
    want1 = np.stack([-(obj.grad(w) + lr / 2 * obj.hvp(w, obj.grad(w))) for w in W])
    batches = np.arange(12).reshape(3, 4)
    want_sgd = np.stack([-(np.mean([obj.grad(w, b) for b in batches], axis=0)
                           + lr / 6 * sum(obj.hvp(w, obj.grad(w, b), b) for b in batches)) for w in W])
    for got, want in ((sd.ModifiedFlow(lr, order=1).drift(net, W), want1),
                      (sd.ModifiedFlow(lr, kind="sgd", batch_size=4).drift(net, W), want_sgd)):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13 * np.abs(want).max())


def test_flows_run_through_simulate(small):
    net, fs = small
    for dyn in (sd.GradientFlow(), sd.ModifiedFlow(0.4, order=2), sd.ModifiedFlow(0.4, kind="sgd", batch_size=4)):
        a = sd.simulate(net, dyn, W0, t_end=1.5, dt=0.3)
        b = sd.simulate(fs, dyn, W0, t_end=1.5, dt=0.3, backend="numpy")
        assert np.max(np.abs(a.w - b.w)) < 1e-7, dyn.label


def test_sgd_diffusion_uses_the_per_sample_covariance():
    """The SGD diffusion's data noise (Sigma_1 from per-sample gradients) and modified drift
    (Hessian from HVPs) equal the finite sum's on the same Gaussian streams."""
    net, fs = glm_pair()
    dyn = sd.SGDDiffusion(0.2, batch_size=4, noise="anisotropic", modified=True)
    a = sd.simulate(net, dyn, W0, n_particles=2, t_end=1.0, dt=0.05, seed=2)
    b = sd.simulate(fs, dyn, W0, n_particles=2, t_end=1.0, dt=0.05, seed=2, backend="numpy")
    assert np.max(np.abs(a.w - b.w)) < 1e-10


def test_bad_input_raises():
    net, _ = glm_pair()
    with pytest.raises(LossKindError):
        NetworkLoss(lambda w: w)
    with pytest.raises(ConfigError):
        sd.simulate(net, sd.SGD(0.1, noise_covariance=np.eye(2)), W0, steps=2)
    with pytest.raises(ConfigError):
        sd.simulate(net, sd.ModifiedFlow(0.1, order=3), W0, t_end=1.0)
    with pytest.raises(ConfigError, match="order 0, 1 and 2"):            # when the run is planned
        resolve(net, sd.ModifiedFlow(0.1, order=3), t_end=1.0)
    with pytest.raises(ShapeError):
        sd.simulate(net, sd.ModifiedFlow(0.1, kind="sgd", batch_size=5), W0, t_end=1.0)
    with pytest.raises(ShapeError):
        sd.simulate(net, sd.GD(0.1), np.zeros(3), steps=2)
    with pytest.raises(ShapeError):
        net.minibatch_grad(W0, np.array([0, 24]))
    with pytest.raises(SdesimError):
        net.value(np.array([np.nan, 1.0]))
    from sdesim.cli import main
    assert main(["net-vs-theory", "--trajectories", "--lr", "0.1", "--out", "unused"]) == 2


# --- trajectories: slopes on a small network -------------------------------------------------

def test_gd_and_sgd_slopes_on_a_small_network():
    """Backward error analysis on a 64-4-10 tanh net, 32 digits, t = 0.4, lr = 0.1 .. 0.025:
    GD vs gradient flow / order 1 / order 2 within 0.1 of slopes 1, 2, 3 (deterministic runs);
    the mean of 24 SGD seeds (4 fixed batches) vs gradient flow within 0.15 of 1, and vs Smith
    et al.'s flow above 1.5 (its Monte Carlo error subtracted; interval stated, fixed seeds)."""
    from sdesim.nets import trajectories as tj

    loss, w0 = tj.small_network(n=32, hidden=4)
    lrs = (0.1, 0.05, 0.025)
    gd, curves = tj.gd_vs_flows(loss, w0, lrs, 0.4)
    for name, want in (("gd/gradient_flow", 1), ("gd/modified_1", 2), ("gd/modified_2", 3)):
        assert abs(tj.fit_slope(lrs, gd[name]).estimate - want) < 0.1, (name, gd[name])
    assert set(curves[0.1]) == {"GD", "gradient flow", "modified flow, order 1 (lr=0.1)",
                                "modified flow, order 2 (lr=0.1)"}
    d, _se, floor, _ = tj.sgd_mean_vs_flows(loss, w0, lrs, 0.4, batch_size=8, n_seeds=24, seed=3)
    assert abs(tj.fit_slope(lrs, d["sgd/gradient_flow"]).estimate - 1) < 0.15
    assert tj.fit_slope(lrs, d["sgd/modified_sgd"]).estimate > 1.5
    assert np.all(d["sgd/modified_sgd"] < d["sgd/gradient_flow"]) and np.all(floor["sgd/modified_sgd"] > 0)
    with pytest.raises(ConfigError):
        tj.sgd_mean_vs_flows(loss, w0, (0.1,), 0.5, batch_size=8, n_seeds=4)      # 5 steps: not whole epochs
    with pytest.raises(ConfigError):
        tj.trajectories(n=30, batch_size=8)


# --- transients: an exactly quadratic network -----------------------------------------------

class QuadraticSamples(Objective):
    """``l_i = 1/2 (w - x_i)^T A (w - x_i)``: Hessian ``A``, per-sample noise ``A Cov(x) A`` constant."""

    def __init__(self, A, x):
        self.A, self.x = A, x
        self.n_samples, self.n_params = x.shape

    def _d(self, w, idx):
        return w - (self.x if idx is None else self.x[idx])

    def loss(self, w, idx=None):
        d = self._d(w, idx)
        return float(0.5 * np.mean(np.einsum("ia,ab,ib->i", d, self.A, d)))

    def grad(self, w, idx=None):
        return self.A @ self._d(w, idx).mean(axis=0)

    def hvp(self, w, v, idx=None):
        return self.A @ v

    def per_sample_grads(self, w, idx):
        return self._d(w, idx) @ self.A


def quadratic_extraction():
    from sdesim.nets.extract import Extraction

    rng = np.random.default_rng(1)
    Q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    A = Q @ np.diag([2.0, 1.0, 0.5]) @ Q.T
    obj = QuadraticSamples(A, rng.standard_normal((64, 3)))
    h, V = np.linalg.eigh(A)
    h, V = h[::-1], V[:, ::-1]
    xc = obj.x - obj.x.mean(axis=0)
    S = V.T @ A @ (xc.T @ xc / len(xc)) @ A @ V
    model = sd.QuadraticModel(hessian=np.diag(h), noise_covariance=S, w_star=np.zeros(3))
    return obj, Extraction(model, V, obj.x.mean(axis=0), np.diag(S).copy(), V.copy(), {})


def test_transient_of_a_quadratic_network_follows_the_discrete_recursion():
    """Real SGD (400 seeds, B = 16 of 64 samples, replacement) on an exactly quadratic 'network'
    with constant noise: mean and variance of every u_j at every step within 4.5 standard errors
    of the exact discrete recursion (SE sqrt(v / R) and v sqrt(2 / (R - 1)); 3 x 25 times each)."""
    from sdesim.nets.transients import transient

    obj, ext = quadratic_extraction()
    R, lr = 400, 0.6
    curves, rows = transient(obj, ext, lr, 16, [0.5, -0.4], steps=24, n_seeds=R, n_particles=4000)
    m, v = curves["real"]
    m_th, v_th = curves["discrete"]
    assert np.all(np.abs(m - m_th) <= 4.5 * np.sqrt(v_th / R) + 1e-12)
    assert np.all(np.abs(v[1:] - v_th[1:]) <= 4.5 * v_th[1:] * np.sqrt(2 / (R - 1)))
    for r in rows:
        assert abs(r.noise_start - 1) < 1e-10                         # constant noise: S at every w
        assert r.var_error["discrete"] < 3 * r.var_floor and r.mean_error["discrete"] < 3 * r.mean_floor
        assert r.var_error["sde"] > r.var_error["discrete"]          # lr h_1 = 1.2: the SDE is off


def test_ou_and_discrete_moments_closed_forms():
    """1D: discrete mean (1 - lr h)^k a and variance -> lr S / (B h (2 - lr h)); OU mean e^{-h t} a,
    variance lr S (1 - e^{-2 h t}) / (2 h B)."""
    from sdesim.nets.transients import discrete_moments, ou_moments

    H, S, a, lr, B = np.array([[0.8]]), np.array([[2.0]]), np.array([1.5]), 0.5, 4
    m, v = discrete_moments(H, S, a, lr, B, 200)
    assert np.allclose(m[:, 0], (1 - lr * 0.8) ** np.arange(201) * 1.5, rtol=1e-12, atol=1e-300)
    assert np.isclose(v[-1, 0], lr * 2.0 / (B * 0.8 * (2 - lr * 0.8)), rtol=1e-12)
    m, v = ou_moments(H, S, a, lr, B, 10)
    t = lr * np.arange(11)
    assert np.allclose(m[:, 0], np.exp(-0.8 * t) * 1.5, rtol=1e-12)
    assert np.allclose(v[:, 0], lr * 2.0 * -np.expm1(-1.6 * t) / (1.6 * B), rtol=1e-12, atol=1e-300)


def test_transient_bad_input():
    from sdesim.nets.transients import transient

    obj, ext = quadratic_extraction()
    with pytest.raises(ShapeError):
        transient(obj, ext, 0.1, 16, np.ones(4), steps=3)
    with pytest.raises(ConfigError):
        transient(obj, ext, 0.1, 16, [1.0], steps=3, n_seeds=1)
