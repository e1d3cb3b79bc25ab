"""``sd.FiniteSumLoss`` against direct NumPy computations from closed-form
per-sample gradients. All comparisons are exact up to summation-order roundoff
(rtol 1e-10)."""

import time

import numpy as np
import pytest

import sdesim as sd
from sdesim.errors import NonFiniteError, ShapeError, SymbolError

RTOL = 1e-10
N_SAMPLES = 40


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


class Linear:
    """``l = 1/2 (a x + b - y)^2 + lam/2 a^2``, params ``(a, b)``, 1-D data ``x``, ``y``."""

    expr = "0.5*(a*x + b - y)**2 + 0.5*lam*a**2"
    lam = 0.1

    def __init__(self, n=N_SAMPLES, seed=0):
        rng = np.random.default_rng(seed)
        self.x = rng.normal(size=n)
        self.y = 2.0 * self.x - 0.5 + 0.3 * rng.normal(size=n)
        self.loss = sd.FiniteSumLoss(self.expr, params=("a", "b"), data={"x": self.x, "y": self.y},
                                     lam=self.lam)

    def values(self, W):                      # (..., n)
        a, b = W[..., 0, None], W[..., 1, None]
        return 0.5 * (a * self.x + b - self.y) ** 2 + 0.5 * self.lam * a**2

    def grads(self, W):                       # (..., n, 2)
        a, b = W[..., 0, None], W[..., 1, None]
        r = a * self.x + b - self.y
        return np.stack([r * self.x + self.lam * a, r], axis=-1)

    def hessian(self, W):                     # (..., 2, 2), constant in W
        h = np.array([[np.mean(self.x**2) + self.lam, np.mean(self.x)], [np.mean(self.x), 1.0]])
        return np.broadcast_to(h, W.shape[:-1] + (2, 2))


class Logistic:
    """``l = log(1 + exp(-y (a x0 + b x1)))``, 2-D data ``x`` (binds ``x0, x1``), labels ``y = +-1``."""

    expr = "log(1 + exp(-y*(a*x0 + b*x1)))"

    def __init__(self, n=N_SAMPLES, seed=1):
        rng = np.random.default_rng(seed)
        self.X = rng.normal(size=(n, 2))
        self.y = np.where(self.X @ [1.0, -0.5] + 0.5 * rng.normal(size=n) > 0, 1.0, -1.0)
        self.loss = sd.FiniteSumLoss(self.expr, params=("a", "b"), data={"x": self.X, "y": self.y})

    def values(self, W):
        z = W @ self.X.T * self.y
        return np.log1p(np.exp(-z))

    def grads(self, W):
        z = W @ self.X.T * self.y
        return (-self.y * _sigmoid(-z))[..., None] * self.X

    def hessian(self, W):
        z = W @ self.X.T * self.y
        s = _sigmoid(z) * _sigmoid(-z)
        return np.einsum("...i,ij,ik->...jk", s, self.X, self.X) / self.X.shape[0]


MODELS = {"linear": Linear, "logistic": Logistic}


@pytest.fixture(params=sorted(MODELS), scope="module")
def model(request):
    return MODELS[request.param]()


def _points(shape=(6,), seed=2):
    return np.random.default_rng(seed).normal(size=shape + (2,))


def test_data_symbols(model):
    names = {s.name for s in model.loss.data_symbols}
    assert names == ({"x", "y"} if isinstance(model, Linear) else {"x0", "x1", "y"})
    assert model.loss.n_samples == N_SAMPLES and model.loss.dim == 2
    assert model.loss.names == ("a", "b")


@pytest.mark.parametrize("shape", [(), (6,), (2, 3)])
def test_full_value_grad_hessian(model, shape):
    W = _points(shape)
    loss = model.loss
    assert loss.value(W).shape == shape
    np.testing.assert_allclose(loss.value(W), model.values(W).mean(-1), rtol=RTOL)
    np.testing.assert_allclose(loss.grad(W), model.grads(W).mean(-2), rtol=RTOL, atol=1e-14)
    np.testing.assert_allclose(loss.hessian(W), model.hessian(W), rtol=RTOL, atol=1e-14)


def test_minibatch_grad_shared_and_per_point(model):
    W = _points((6,))
    G = model.grads(W)                                         # (6, n, 2)
    idx = np.array([3, 7, 7, 0, 39])                           # repeats allowed (with replacement)
    np.testing.assert_allclose(model.loss.minibatch_grad(W, idx), G[:, idx].mean(1), rtol=RTOL)
    per = np.random.default_rng(3).integers(0, N_SAMPLES, size=(6, 8))
    expected = np.stack([G[p, per[p]].mean(0) for p in range(6)])
    np.testing.assert_allclose(model.loss.minibatch_grad(W, per), expected, rtol=RTOL)
    # leading shape (2, 3) flattens to 6 points, one batch per point
    W23 = W.reshape(2, 3, 2)
    np.testing.assert_allclose(model.loss.minibatch_grad(W23, per), expected.reshape(2, 3, 2), rtol=RTOL)


def test_per_sample_grad(model):
    W = _points((2, 3))
    G = model.grads(W)
    out = model.loss.per_sample_grad(W)
    assert out.shape == (2, 3, N_SAMPLES, 2)
    np.testing.assert_allclose(out, G, rtol=RTOL, atol=1e-14)
    idx = np.array([5, 1, 1])
    np.testing.assert_allclose(model.loss.per_sample_grad(W, idx), G[..., idx, :], rtol=RTOL, atol=1e-14)


def _direct_covariance(G):
    """``Sigma_1 = mean_i (g_i - g)(g_i - g)^T`` (bias=True: divide by n)."""
    D = G - G.mean(-2, keepdims=True)
    return np.einsum("...ij,...ik->...jk", D, D) / G.shape[-2]


def test_noise_covariance(model):
    W = _points((2, 3))
    S = model.loss.noise_covariance(W)
    assert S.shape == (2, 3, 2, 2)
    np.testing.assert_allclose(S, _direct_covariance(model.grads(W)), rtol=RTOL, atol=1e-14)
    # the same as NumPy's population covariance, point by point
    G = model.grads(W)
    np.testing.assert_allclose(S[1, 2], np.cov(G[1, 2].T, bias=True), rtol=RTOL, atol=1e-14)
    np.testing.assert_allclose(S, np.swapaxes(S, -1, -2), rtol=0, atol=0)
    assert np.all(np.linalg.eigvalsh(S) > -1e-12)


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_as_loss_equals_full_value(kind):
    model = MODELS[kind](n=10)                    # logistic: an explicit sum of n terms
    W = _points((5,))
    full = model.loss.as_loss()
    assert isinstance(full, sd.Loss) and full.names == ("a", "b")
    np.testing.assert_allclose(full.value(W), model.loss.value(W), rtol=1e-10)
    np.testing.assert_allclose(full.grad(W), model.loss.grad(W), rtol=1e-9, atol=1e-12)


def test_as_loss_polynomial_is_compact():
    """Polynomial in the data: the mean is written with data moments, not n terms."""
    m = Linear(n=5000)
    full = m.loss.as_loss()
    assert len(full.expr.args) <= 10
    W = _points((4,))
    np.testing.assert_allclose(full.value(W), m.values(W).mean(-1), rtol=1e-10)


@pytest.mark.parametrize("batch_size", [10, 20])
def test_modified_sgd_is_definition(batch_size):
    m = Linear()
    lr = 0.1
    n_batches = N_SAMPLES // batch_size
    W = _points((7,))
    G = m.grads(W)                                             # (7, n, 2)
    batch_grads = G.reshape(7, n_batches, batch_size, 2).mean(2)
    expected = m.values(W).mean(-1) + lr / (4 * n_batches) * np.sum(batch_grads**2, axis=(-2, -1))
    mod = m.loss.modified_sgd(lr, batch_size)
    np.testing.assert_allclose(mod.value(W), expected, rtol=1e-10)
    # the batch gradients as minibatch_grad sees them
    for k, rows in enumerate(m.loss.fixed_batches(batch_size)):
        np.testing.assert_allclose(m.loss.minibatch_grad(W, rows), batch_grads[:, k], rtol=RTOL)
    with pytest.raises(ShapeError, match="batches of 7"):
        m.loss.modified_sgd(lr, 7)


def test_modified_sgd_non_polynomial():
    m = Logistic(n=6)                             # explicit sums of 6 terms: kept small to compile fast
    lr, B = 0.2, 3
    W = _points((3,))
    bg = m.grads(W).reshape(3, 2, B, 2).mean(2)
    expected = m.values(W).mean(-1) + lr / 8 * np.sum(bg**2, axis=(-2, -1))
    np.testing.assert_allclose(m.loss.modified_sgd(lr, B).value(W), expected, rtol=1e-10)


def test_noise_covariance_scale():
    """1e4 particles x 1e4 samples on a 2-parameter linear model: no Python loop,
    a few seconds at most; checked on a few points against NumPy."""
    rng = np.random.default_rng(4)
    m = Linear(n=10_000, seed=4)                  # same expression as Linear: kernels reused
    x, y, loss = m.x, m.y, m.loss
    W = rng.normal(size=(10_000, 2))
    loss.noise_covariance(W[:2])                              # compile outside the timing
    t0 = time.perf_counter()
    S = loss.noise_covariance(W)
    elapsed = time.perf_counter() - t0
    assert S.shape == (10_000, 2, 2) and np.all(np.isfinite(S))
    assert elapsed < 30.0, elapsed
    for p in [0, 4321, 9999]:
        G = m.grads(W[p])
        np.testing.assert_allclose(S[p], np.cov(G.T, bias=True), rtol=1e-9)


# --- bad input ------------------------------------------------------------------------

def test_mismatched_data_lengths():
    with pytest.raises(ShapeError, match="lengths"):
        sd.FiniteSumLoss("(a*x - y)**2", params=("a",), data={"x": np.ones(5), "y": np.ones(4)})
    with pytest.raises(ShapeError):
        sd.FiniteSumLoss("(a*x - y)**2", params=("a",), data={"x": np.ones(5), "y": 1.0})


def test_nan_data_names_array_and_row():
    y = np.ones(5)
    y[3] = np.nan
    with pytest.raises(NonFiniteError, match=r"'y'.*row 3"):
        sd.FiniteSumLoss("(a*x - y)**2", params=("a",), data={"x": np.ones(5), "y": y})


def test_unused_data_symbol():
    with pytest.raises(SymbolError, match="z"):
        sd.FiniteSumLoss("(a*x - y)**2", params=("a",), data={"x": np.ones(5), "y": np.ones(5),
                                                               "z": np.ones(5)})


def test_unbound_symbol():
    with pytest.raises(SymbolError, match="c"):
        sd.FiniteSumLoss("(a*x - y)**2 + c*a", params=("a",), data={"x": np.ones(5), "y": np.ones(5)})


def test_parameter_also_data():
    with pytest.raises(SymbolError, match="x"):
        sd.FiniteSumLoss("(a*x - y)**2", params=("a", "x"), data={"x": np.ones(5), "y": np.ones(5)})


def test_bad_indices():
    m = Linear()
    W = _points((3,))
    with pytest.raises(ShapeError, match=r"\[0, 40\)"):
        m.loss.minibatch_grad(W, [0, 40])
    with pytest.raises(ShapeError, match=r"\[0, 40\)"):
        m.loss.per_sample_grad(W, [-1, 2])
    with pytest.raises(ShapeError, match="integers"):
        m.loss.minibatch_grad(W, [0.5, 1.0])
    with pytest.raises(ShapeError, match=r"\(3, batch\)"):
        m.loss.minibatch_grad(W, np.zeros((4, 2), dtype=int))


def test_bad_points():
    m = Linear()
    with pytest.raises(ShapeError, match=r"\(4, 3\)"):
        m.loss.noise_covariance(np.zeros((4, 3)))
    W = np.zeros((3, 2))
    W[1, 0] = np.nan
    with pytest.raises(NonFiniteError, match=r"\(1, 0\)"):
        m.loss.grad(W)


def test_bad_constants():
    data = {"x": np.ones(5), "y": np.ones(5)}
    with pytest.raises(NonFiniteError, match="lam"):
        sd.FiniteSumLoss("(a*x - y)**2 + lam*a**2", params=("a",), data=data, lam=float("nan"))
    with pytest.raises(SymbolError, match="mu"):
        sd.FiniteSumLoss("(a*x - y)**2", params=("a",), data=data, mu=1.0)


def test_pickle_after_compiling():
    import pickle
    m = Linear()
    W = _points((3,))
    S = m.loss.noise_covariance(W)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(m.loss)).noise_covariance(W), S)
