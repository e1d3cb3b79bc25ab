"""The NumPy MLP, offline data and quadratic-model extraction.

Oracles: central finite differences (step 1e-5, truncation ~1e-10) for gradients
and Hessian-vector products, an explicit loop over samples for per-sample
gradients, and dense eigendecompositions on tiny nets for the extracted
Hessian and gradient-covariance eigenpairs.
"""

import pickle
import random

import numpy as np
import pytest

from sdesim.analysis.lanczos import lanczos
from sdesim.errors import FormatError, NonFiniteError, ShapeError
from sdesim.losses.quadratic import QuadraticModel
from sdesim.nets import MLP, Dataset, load, load_mnist1d
from sdesim.nets.extract import Extraction, extract, extract_quadratic
from sdesim.nets.objective import MLPObjective, Objective

ACTIVATIONS = ["tanh", "relu", "gelu"]


@pytest.fixture(autouse=True)
def _single_threaded_blas():
    """Multithreaded BLAS on a busy 2-core machine oversubscribes the cores and
    slows full-batch products ~10x; these tests time out without the limit."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(1, user_api="blas"):
        yield


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One data cache for the module (MNIST-1D is generated once, a few seconds)."""
    path = tmp_path_factory.mktemp("sdesim-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SDESIM_CACHE", str(path))
        yield path


LOSSES = ["cross_entropy", "squared"]
EPS = 1e-5


def _problem(activation="tanh", loss="cross_entropy", weight_decay=0.01, n=13, sizes=(5, 7, 6, 3), seed=0):
    rng = np.random.default_rng(seed)
    net = MLP(sizes, activation=activation, loss=loss, weight_decay=weight_decay)
    w = net.init(seed) + 0.1 * rng.standard_normal(net.n_params)
    x = rng.standard_normal((n, sizes[0]))
    y = rng.integers(0, sizes[-1], n)
    return net, w, x, y, rng


def _fd_grad(f, w):
    E = np.eye(len(w)) * EPS
    return np.array([(f(w + e) - f(w - e)) / (2 * EPS) for e in E])


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_grad_and_hvp_match_finite_differences(activation, loss):
    net, w, x, y, rng = _problem(activation, loss)
    g = net.grad(w, x, y)
    np.testing.assert_allclose(g, _fd_grad(lambda v: net.loss(v, x, y), w), atol=1e-8)
    value, g2 = net.loss_and_grad(w, x, y)
    assert value == pytest.approx(net.loss(w, x, y), rel=1e-14)
    np.testing.assert_array_equal(g, g2)
    for _ in range(3):
        v = rng.standard_normal(net.n_params)
        hv = net.hvp(w, x, y, v)
        fd = (net.grad(w + EPS * v, x, y) - net.grad(w - EPS * v, x, y)) / (2 * EPS)
        np.testing.assert_allclose(hv, fd, rtol=0, atol=1e-7 * np.abs(hv).max())


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_fused_grad_and_hvp_equals_separate_passes(activation, loss):
    """One forward/backward pass for ``(g, H v)`` (``v = g`` by default) gives :meth:`grad` and
    :meth:`hvp`'s numbers (same operations: equal to rounding, held to 1e-13 relative), through
    ``MLPObjective`` on subsets too, on every batch size in turn (the kept work arrays are
    reshaped) and after a pickle round trip (which drops them)."""
    net, w, x, y, rng = _problem(activation, loss, n=17)
    v = rng.standard_normal(net.n_params)

    def close(a, b):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13 * np.abs(b).max())

    for model in (net, pickle.loads(pickle.dumps(net))):
        for n in (17, 5, 17):
            g = net.grad(w, x[:n], y[:n])
            g1, hg = model.grad_and_hvp(w, x[:n], y[:n])
            close(g1, g)
            close(hg, net.hvp(w, x[:n], y[:n], g))
            g2, hv = model.grad_and_hvp(w, x[:n], y[:n], v)
            close(g2, g)
            close(hv, net.hvp(w, x[:n], y[:n], v))
    obj, idx = MLPObjective(net, x, y), np.array([3, 0, 11, 7])
    for fused, plain in zip(obj.grad_and_hvp(w, idx=idx), Objective.grad_and_hvp(obj, w, idx=idx)):
        close(fused, plain)
    with pytest.raises(ShapeError, match="direction v"):
        net.grad_and_hvp(w, x, y, v[:-1])


@pytest.mark.parametrize("activation", ["tanh", "gelu"])
def test_dense_hessian_from_hvp_columns_matches_finite_differences(activation):
    net, w, x, y, _ = _problem(activation, sizes=(3, 4, 3))
    eye = np.eye(net.n_params)
    H_hvp = np.column_stack([net.hvp(w, x, y, e) for e in eye])
    H_fd = np.column_stack([(net.grad(w + EPS * e, x, y) - net.grad(w - EPS * e, x, y)) / (2 * EPS) for e in eye])
    np.testing.assert_allclose(H_hvp, H_hvp.T, atol=1e-13)  # exact Hessian is symmetric to rounding
    np.testing.assert_allclose(H_hvp, H_fd, atol=1e-8)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_per_sample_grads_match_loop(activation, loss):
    net, w, x, y, rng = _problem(activation, loss)
    G = net.per_sample_grads(w, x, y)
    loop = np.stack([net.grad(w, x[i : i + 1], y[i : i + 1]) for i in range(len(y))])
    np.testing.assert_allclose(G, loop, atol=1e-14)
    np.testing.assert_allclose(G.mean(axis=0), net.grad(w, x, y), atol=1e-14)
    np.testing.assert_allclose(net.sample_losses(w, x, y).mean(), net.loss(w, x, y), rtol=1e-14)
    # matrix-free products with G, chunked over samples, and the covariance operator
    J = net.sample_jacobian(w, x, y, chunk_size=4)
    v, u = rng.standard_normal(net.n_params), rng.standard_normal(len(y))
    np.testing.assert_allclose(J.matvec(v), G @ v, atol=1e-12)
    np.testing.assert_allclose(J.rmatvec(u), G.T @ u, atol=1e-12)
    Sigma = np.cov(G.T, bias=True)
    np.testing.assert_allclose(J.covariance_matvec(v), Sigma @ v, atol=1e-12)
    assert J.covariance_trace() == pytest.approx(np.trace(Sigma), rel=1e-12)


def test_extract_matches_dense_computation_on_tiny_net(tmp_path):
    rng = np.random.default_rng(3)
    net = MLP((4, 6, 3), activation="tanh", weight_decay=0.05)
    x = rng.standard_normal((40, 4))
    data = Dataset(x, rng.integers(0, 3, 40), 3, "tiny")
    k = 4
    ext = extract(net, data, net.init(0), k=k, gtol=1e-10, maxiter=5000)
    w_star = ext.w_star
    assert ext.report["grad_norm"] < 1e-7
    np.testing.assert_allclose(np.linalg.norm(net.grad(w_star, data.x, data.y)), ext.report["grad_norm"])
    # dense oracles: Hessian from HVP columns, covariance from per-sample gradients
    H = np.column_stack([net.hvp(w_star, data.x, data.y, e) for e in np.eye(net.n_params)])
    h, U = np.linalg.eigh(0.5 * (H + H.T))
    h, U = h[::-1][:k], U[:, ::-1][:, :k]
    G = net.per_sample_grads(w_star, data.x, data.y)
    Sigma = np.cov(G.T, bias=True)
    s, Us = np.linalg.eigh(Sigma)
    s, Us = s[::-1][:k], Us[:, ::-1][:, :k]
    model = ext.model
    np.testing.assert_allclose(model.hessian_eigenvalues, h, rtol=1e-8)
    np.testing.assert_allclose(np.abs(np.sum(ext.basis * U, axis=0)), 1.0, atol=1e-6)
    np.testing.assert_allclose(ext.noise_eigenvalues, s, rtol=1e-8)
    np.testing.assert_allclose(np.abs(np.sum(ext.noise_eigenvectors * Us, axis=0)), 1.0, atol=1e-6)
    np.testing.assert_allclose(model.S, ext.basis.T @ Sigma @ ext.basis, atol=1e-12)
    np.testing.assert_allclose(model.H, np.diag(h), rtol=1e-8, atol=1e-12)
    np.testing.assert_array_equal(model.w_star, np.zeros(k))
    assert ext.report["noise_trace"] == pytest.approx(np.trace(Sigma), rel=1e-10)
    assert model.metadata["net"]["sizes"] == [4, 6, 3]
    # coordinates: projecting w* + V u gives back u
    u = rng.standard_normal((2, k))
    np.testing.assert_allclose(ext.project(ext.lift(u)), u, atol=1e-12)
    # round trip through files; the k-dim model alone reads back as a QuadraticModel
    path = ext.save(tmp_path / "tiny")
    back = Extraction.load(path)
    np.testing.assert_array_equal(back.basis, ext.basis)
    np.testing.assert_array_equal(back.model.S, model.S)
    assert back.report["grad_norm"] == ext.report["grad_norm"]
    assert isinstance(QuadraticModel.load(path), QuadraticModel)
    np.savez(path.with_suffix(".basis.npz"), format=np.array("other"), format_version=np.int64(9))
    with pytest.raises(FormatError, match="version"):
        Extraction.load(path)
    # extract_quadratic without refinement keeps w and reports its gradient norm
    qm = extract_quadratic(net, data, w_star, k=2, refine=False)
    np.testing.assert_allclose(qm.hessian_eigenvalues, h[:2], rtol=1e-8)
    assert qm.metadata["grad_norm"] < 1e-7
    with pytest.warns(UserWarning, match="L-BFGS stopped"):
        extract(net, data, net.init(0), k=2, maxiter=2)


def test_bad_inputs_name_the_problem():
    net, w, x, y, _ = _problem()
    with pytest.raises(ShapeError, match=f"{net.n_params} parameters"):
        net.grad(w[:-1], x, y)
    with pytest.raises(ShapeError, match="direction v"):
        net.hvp(w, x, y, w[:-2])
    with pytest.raises(ShapeError, match="expects"):
        net.loss(w, x[:, :-1], y)
    with pytest.raises(ShapeError, match="labels"):
        net.grad(w, x, y[:-1])
    with pytest.raises(ShapeError, match="outputs"):
        net.grad(w, x, y + 10)
    with pytest.raises(NonFiniteError, match="NaN"):
        Dataset(np.where(np.eye(3, 2) > 0, np.nan, 0.0), [0, 1, 0], 2, "bad")
    with pytest.raises(ShapeError, match="3 samples in x but 2 labels"):
        Dataset(np.zeros((3, 2)), [0, 1], 2, "bad")
    with pytest.raises(ShapeError, match="n_classes"):
        Dataset(np.zeros((3, 2)), [0, 1, 2], 2, "bad")
    with pytest.raises(ShapeError, match="expects"):
        extract(net, Dataset(np.zeros((4, 2)), [0, 1, 0, 1], 2, "wrong"), w, k=2)
    with pytest.raises(ValueError, match="activation"):
        MLP((2, 3), activation="sigmoid")
    with pytest.raises(ValueError, match="unknown data set"):
        load("cifar")


def test_mnist1d_offline_cached_and_deterministic(cache):
    pytest.importorskip("mnist1d")
    np.random.seed(123)
    random.seed(123)
    before = (np.random.random(), random.random())
    np.random.seed(123)
    random.seed(123)
    train, test = load_mnist1d()
    assert (np.random.random(), random.random()) == before  # global RNG state untouched
    assert (cache / "mnist1d-seed42-v1.npz").exists()
    assert (len(train), len(test), train.n_features, train.n_classes) == (4000, 1000, 40, 10)
    np.testing.assert_allclose(train.x.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(train.x.std(axis=0), 1.0, atol=1e-12)
    cached, _ = load_mnist1d()
    fresh, _ = load_mnist1d(cache=False)
    np.testing.assert_array_equal(cached.x, train.x)
    np.testing.assert_array_equal(fresh.x, train.x)
    np.testing.assert_array_equal(fresh.y, train.y)
    assert not train.x.flags.writeable


def test_digits_optional():
    pytest.importorskip("sklearn")
    train, test = load("digits", seed=1)
    assert (len(train) + len(test), train.n_features, train.n_classes) == (1797, 64, 10)
    again, _ = load("digits", seed=1)
    np.testing.assert_array_equal(again.x, train.x)


def _tiny_training_problem(n=48):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((n, 4))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int) + (x[:, 2] > 1).astype(int)
    return MLP((4, 8, 3), weight_decay=1e-3), Dataset(x[:40], y[:40], 3, "toy"), Dataset(x[40:], y[40:], 3, "toy-test")


def test_train_gd_matches_hand_loop_and_records():
    import sdesim as sd
    from sdesim.nets.train import train

    net, train_set, test_set = _tiny_training_problem()
    w = net.init(1)
    D = np.linalg.qr(np.random.default_rng(0).standard_normal((net.n_params, 2)))[0]
    res = train(net, (train_set, test_set), sd.GD(lr=0.3), steps=25, record_every=10,
                hessian_every=20, hessian_k=2, w0=w)
    manual = [w]
    for _ in range(25):
        manual.append(manual[-1] - 0.3 * net.grad(manual[-1], train_set.x, train_set.y))
    out = res.reduced["net"]
    np.testing.assert_array_equal(out["step"], [0, 10, 20, 25])
    np.testing.assert_array_equal(out["stats_step"], [0, 10, 20, 25])
    np.testing.assert_allclose(res.t, [0.0, 3.0, 6.0, 7.5])
    assert res.w.shape == (4, 1, net.n_params) and res.loss.shape == (4, 1)
    np.testing.assert_allclose(res.w[:, 0], np.array(manual)[[0, 10, 20, 25]], atol=1e-13)
    np.testing.assert_allclose(res.loss[:, 0], [net.loss(manual[k], train_set.x, train_set.y) for k in (0, 10, 20, 25)])
    G = net.per_sample_grads(manual[25], train_set.x, train_set.y)
    assert out["noise_trace"][-1] == pytest.approx(np.trace(np.cov(G.T, bias=True)), rel=1e-10)
    assert np.all(np.isinf(out["grad_snr"]))  # GD has no gradient noise
    assert out["test_accuracy"][-1] == net.accuracy(manual[25], test_set.x, test_set.y)
    # coordinates on given directions instead of weights; statistics on their own schedule
    coords = train(net, train_set, sd.GD(lr=0.3), steps=25, record_every=5, stats_every=20, directions=D,
                   w0=w, w_ref=manual[10])
    assert coords.w.shape == (6, 1, 2) and coords.metadata["state"].startswith("coordinates")
    np.testing.assert_allclose(coords.w[:, 0], (np.array(manual)[::5] - manual[10]) @ D, atol=1e-13)
    np.testing.assert_array_equal(coords.reduced["net"]["stats_step"], [0, 20, 25])
    np.testing.assert_array_equal(out["hessian_step"], [0, 20, 25])
    H = np.column_stack([net.hvp(manual[25], train_set.x, train_set.y, e) for e in np.eye(net.n_params)])
    np.testing.assert_allclose(out["hessian_eigenvalues"][-1], np.linalg.eigvalsh(H)[::-1][:2], rtol=1e-6)


@pytest.mark.parametrize("sampling", ["replacement", "shuffle", "fixed"])
def test_train_sgd_is_seeded_and_momentum_matches_hand_loop(sampling):
    import sdesim as sd
    from sdesim.nets.train import train

    net, train_set, _ = _tiny_training_problem()
    dyn = sd.SGD(lr=0.1, batch_size=8, sampling=sampling)
    a = train(net, train_set, dyn, steps=30, record_every=10, seed=3)
    b = train(net, train_set, dyn, steps=30, record_every=10, seed=3)
    c = train(net, train_set, dyn, steps=30, record_every=10, seed=4)
    np.testing.assert_array_equal(a.w, b.w)
    assert not np.array_equal(a.w[-1], c.w[-1])
    assert np.all(np.isnan(a.reduced["net"]["test_accuracy"]))
    out = a.reduced["net"]
    c = 1.0 if sampling == "replacement" else (40 - 8) / 39
    np.testing.assert_allclose(out["grad_snr"], out["grad_norm"] ** 2 * 8 / (c * out["noise_trace"]), rtol=1e-12)
    # full batch through SGD (fixed batches of size n) with heavy-ball momentum equals the hand loop
    mom = train(net, train_set, sd.SGD(lr=0.1, batch_size=40, sampling="fixed", momentum=0.5), steps=6, record_every=6)
    w, v = net.init(0), 0.0
    for _ in range(6):
        v = 0.5 * v - 0.1 * net.grad(w, train_set.x, train_set.y)
        w = w + v
    np.testing.assert_allclose(mom.w[-1, 0], w, atol=1e-13)


def test_train_schedule_and_nudge():
    import sdesim as sd
    from sdesim.nets.train import train

    net, train_set, _ = _tiny_training_problem()
    step = sd.schedules.Step(every=0.5, factor=0.5)  # lr_k = lr * 0.5**floor(k lr / 0.5)
    res = train(net, train_set, sd.SGD(lr=0.1, batch_size=40, sampling="fixed", schedule=step), steps=12, record_every=12)
    w = net.init(0)
    for k in range(12):
        w = w - 0.1 * 0.5 ** np.floor(k * 0.1 / 0.5) * net.grad(w, train_set.x, train_set.y)
    np.testing.assert_allclose(res.w[-1, 0], w, atol=1e-13)
    # nudge_factor = 0 freezes the top Hessian direction between refreshes: one GD step from w0
    # leaves the projection on the top eigenvector at w0 unchanged
    w0 = net.init(0)
    nudged = train(net, train_set, sd.SGD(lr=0.1, batch_size=40, sampling="fixed", nudge_k=1, nudge_factor=0.0),
                   steps=1, record_every=1, hessian_every=1)
    v = lanczos(lambda u: net.hvp(w0, train_set.x, train_set.y, u), net.n_params, 1)[1][:, 0]
    assert abs((nudged.w[-1, 0] - w0) @ v) < 1e-10
    with pytest.raises(ValueError, match="hessian_every"):
        train(net, train_set, sd.SGD(lr=0.1, batch_size=8, nudge_k=1), steps=1)


@pytest.mark.parametrize("sampling", ["replacement", "shuffle", "fixed"])
def test_train_draws_the_minibatches_of_simulate(sampling, monkeypatch):
    """Same n, B, sampling and seed, same minibatches: ``nets.train`` uses particle 0 of
    ``Sampler(...).indices``, and so does ``sd.simulate`` (NumPy backend) on a finite sum.

    The net's samples carry their index as first feature; the finite sum
    ``l_i = w . e_i`` (one-hot data) moves ``w`` by ``-lr counts_k / B`` at step ``k``, which
    gives back each particle's minibatch counts exactly (``B = 2``, ``lr = 1``: halves).
    ``n = 7`` is not a multiple of ``B``: one sample is left over every epoch.
    """
    import sdesim as sd
    from sdesim.dynamics.sampling import Sampler
    from sdesim.nets.train import train

    n, B, steps, seed, particles = 7, 2, 12, 5, 3
    sampler, memo = Sampler(sampling, n, B, seed), {}
    expected = np.array([sampler.indices(k, np.arange(particles), memo) for k in range(steps)])  # (steps, N, B)

    net = MLP((2, 3))
    data = Dataset(np.column_stack([np.arange(n), np.zeros(n)]), np.zeros(n, dtype=int), 3, "indexed")
    seen, grad = [], net.grad

    def recording_grad(w, x, y):
        seen.append(x[:, 0].astype(int))
        return grad(w, x, y)

    monkeypatch.setattr(net, "grad", recording_grad)
    train(net, data, sd.SGD(lr=0.1, batch_size=B, sampling=sampling), steps, record_every=steps, stats_every=0,
          seed=seed)
    np.testing.assert_array_equal(seen, expected[:, 0])

    names = [f"w{i}" for i in range(n)]
    loss = sd.FiniteSumLoss(" + ".join(f"w{i}*x{i}" for i in range(n)), params=names, data={"x": np.eye(n)})
    res = sd.simulate(loss, sd.SGD(lr=1.0, batch_size=B, sampling=sampling), np.zeros(n), n_particles=particles,
                      steps=steps, backend="numpy", seed=seed)
    counts = -B * np.diff(res.w, axis=0)                                      # (steps, N, n)
    expected_counts = (expected[..., None] == np.arange(n)).sum(axis=2)        # (steps, N, n)
    np.testing.assert_array_equal(counts, expected_counts)


def test_train_divergence_and_bad_input():
    import sdesim as sd
    from sdesim.nets.train import train

    net = MLP((4, 8, 3), activation="relu", loss="squared")
    _, train_set, _ = _tiny_training_problem()
    res = train(net, train_set, sd.GD(lr=50.0), steps=40, record_every=10)
    assert res.diverged_at[0] > 0
    np.testing.assert_array_equal(res.reduced["net"]["step"], [0, 10, 20, 30, 40])
    assert np.isnan(res.loss[-1, 0])
    with pytest.raises(ShapeError, match="expects"):
        train(MLP((5, 3)), train_set, sd.GD(lr=0.1), steps=1)
    with pytest.raises(TypeError, match="GD or SGD"):
        train(net, train_set, sd.GradientFlow(), steps=1)


@pytest.mark.parametrize("name, needs", [("digits_mlp", "sklearn"), ("mnist1d_mlp", "mnist1d")])
def test_shipped_models_match_their_recipe(name, needs, cache):
    """The shipped files load, are small, and their eigenpairs are eigenpairs of the net they came from."""
    from pathlib import Path

    from sdesim.nets.zoo import RECIPES

    pytest.importorskip(needs)
    path = Path(__file__).resolve().parents[1] / "models" / f"{name}.npz"
    total = sum(p.stat().st_size for p in path.parent.glob(f"{name}.*"))
    assert total < 5e6
    ext = Extraction.load(path)
    recipe = RECIPES[name]
    assert ext.model.metadata["provenance"]["net"] == recipe["net"]
    spec = recipe["net"]
    net = MLP(spec["sizes"], spec["activation"], spec["loss"], spec["weight_decay"])
    train_set, _ = load(**recipe["data"])
    k = recipe["extract"]["k"]
    assert ext.basis.shape == (net.n_params, k) and ext.model.dim == k
    g = net.grad(ext.w_star, train_set.x, train_set.y)
    assert np.linalg.norm(g) == pytest.approx(ext.report["grad_norm"], rel=1e-6)
    h = ext.model.hessian_eigenvalues
    Hv = net.hvp(ext.w_star, train_set.x, train_set.y, ext.basis[:, 0])
    np.testing.assert_allclose(Hv, h[0] * ext.basis[:, 0], atol=1e-6 * h[0])
    u = ext.basis[:, :3]
    Su = np.column_stack([net.sample_jacobian(ext.w_star, train_set.x, train_set.y).covariance_matvec(c) for c in u.T])
    np.testing.assert_allclose(u.T @ Su, ext.model.S[:3, :3], rtol=1e-8, atol=1e-12)


def test_gd_sharpness_settles_at_two_over_lr():
    """Full-batch GD (squared loss, 300 digits) starts with sharpness ~11 > 2/lr = 5:
    it cannot settle there, and the top Hessian eigenvalue comes down to and hovers
    at 2/lr (edge of stability, Cohen et al. 2021): within 10% over steps 200-1200."""
    import sdesim as sd
    from sdesim.nets.train import train

    pytest.importorskip("sklearn")
    train_set, _ = load("digits")
    sub = Dataset(train_set.x[:300], train_set.y[:300], 10, "digits-300")
    lr = 0.4
    res = train(MLP((64, 100, 10), "tanh", "squared"), sub, sd.GD(lr=lr), steps=1200,
                record_every=200, hessian_every=200)
    sharpness = res.reduced["net"]["hessian_eigenvalues"][:, 0]
    assert sharpness[0] > 1.5 * 2 / lr
    np.testing.assert_allclose(sharpness[1:], 2 / lr, rtol=0.1)
    assert res.loss[-1, 0] < 0.05 * res.loss[0, 0]
