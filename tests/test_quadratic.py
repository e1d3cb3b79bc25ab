"""QuadraticModel: derivatives, compact storage, files, Lyapunov theory, input errors."""

import json

import numpy as np
import pytest

import sdesim as sd
from sdesim.errors import FormatError, NonFiniteError, ShapeError


def random_model(dim=5, seed=0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    lam = np.linspace(3.0, 0.5, dim)
    f = rng.normal(size=(dim, 2))
    d = rng.uniform(0.1, 0.5, size=dim)
    w_star = rng.normal(size=dim)
    return q, lam, f, d, w_star


@pytest.fixture
def dense():
    q, lam, f, d, w_star = random_model()
    return sd.QuadraticModel(hessian=(q * lam) @ q.T, noise_covariance=f @ f.T + np.diag(d), w_star=w_star)


def test_value_grad_hessian_match_finite_differences(dense):
    rng = np.random.default_rng(1)
    w = rng.normal(size=dense.dim)
    eps = 1e-6
    eye = np.eye(dense.dim)
    fd_grad = (dense.value(w + eps * eye) - dense.value(w - eps * eye)) / (2 * eps)
    np.testing.assert_allclose(dense.grad(w), fd_grad, rtol=1e-7, atol=1e-7)
    fd_hess = (dense.grad(w + eps * eye) - dense.grad(w - eps * eye)) / (2 * eps)
    np.testing.assert_allclose(dense.hessian(w), fd_hess, rtol=1e-7, atol=1e-7)
    assert dense.value(dense.w_star) == pytest.approx(0.0, abs=1e-14)


def test_pointwise_methods_broadcast(dense):
    W = np.random.default_rng(2).normal(size=(4, 3, dense.dim))
    assert dense.value(W).shape == (4, 3)
    assert dense.grad(W).shape == (4, 3, dense.dim)
    assert dense.hessian(W).shape == (4, 3, dense.dim, dense.dim)
    assert dense.noise_covariance_at(W).shape == (4, 3, dense.dim, dense.dim)
    np.testing.assert_allclose(dense.grad(W)[1, 2], dense.H @ (W[1, 2] - dense.w_star), atol=1e-12)
    np.testing.assert_array_equal(dense.noise_covariance_at(W)[0, 0], dense.noise_covariance)


def test_eigenpair_and_lowrank_forms_equal_dense():
    q, lam, f, d, w_star = random_model(dim=6, seed=3)
    k, rest = 3, 0.2
    compact = sd.QuadraticModel(hessian_eigenvalues=lam[:k][::-1], hessian_eigenvectors=q[:, :k][:, ::-1],
                                hessian_rest=rest, noise_factor=f, noise_diagonal=d, w_star=w_star)
    h = (q[:, :k] * lam[:k]) @ q[:, :k].T + rest * (np.eye(6) - q[:, :k] @ q[:, :k].T)
    s = f @ f.T + np.diag(d)
    full = sd.QuadraticModel(hessian=h, noise_covariance=s, w_star=w_star)
    np.testing.assert_allclose(compact.H, h, atol=1e-12)
    np.testing.assert_allclose(compact.S, s, atol=1e-12)
    np.testing.assert_allclose(compact.hessian_eigenvalues, lam[:k])  # sorted descending
    np.testing.assert_allclose(np.abs(compact.hessian_eigenvectors.T @ q[:, :k]), np.eye(k), atol=1e-12)
    W = np.random.default_rng(4).normal(size=(7, 6))
    np.testing.assert_allclose(compact.value(W), full.value(W), rtol=1e-12)
    np.testing.assert_allclose(compact.grad(W), full.grad(W), atol=1e-12)
    np.testing.assert_allclose(compact.hessian_vector(W), W @ h, atol=1e-12)
    assert compact.noise_trace == pytest.approx(np.trace(s))
    for model in (compact, full):
        g = model.noise_sqrt()
        np.testing.assert_allclose(g @ g.T, s, atol=1e-12)
    np.testing.assert_allclose(full.hessian_eigenvalues[:k], lam[:k])


def test_defaults():
    qm = sd.QuadraticModel(hessian=np.diag([2.0, 1.0]))
    np.testing.assert_array_equal(qm.w_star, [0.0, 0.0])
    np.testing.assert_array_equal(qm.noise_covariance, np.zeros((2, 2)))
    assert qm.noise_sqrt().shape == (2, 0)
    np.testing.assert_array_equal(qm.hessian_eigenvalues, [2.0, 1.0])


@pytest.mark.parametrize("compact", [False, True])
def test_save_load_round_trip(tmp_path, compact):
    q, lam, f, d, w_star = random_model(dim=4, seed=5)
    if compact:
        qm = sd.QuadraticModel(hessian_eigenvalues=lam[:2], hessian_eigenvectors=q[:, :2], hessian_rest=0.1,
                               noise_factor=f, noise_diagonal=d, w_star=w_star,
                               metadata={"source": "unit test", "seed": 5})
    else:
        qm = sd.QuadraticModel(hessian=(q * lam) @ q.T, noise_covariance=f @ f.T, w_star=w_star,
                               metadata={"source": "unit test"})
    written = qm.save(tmp_path / "model")
    assert written == tmp_path / "model.npz"
    back = sd.QuadraticModel.load(tmp_path / "model.npz")
    np.testing.assert_array_equal(back.H, qm.H)
    np.testing.assert_array_equal(back.S, qm.S)
    np.testing.assert_array_equal(back.w_star, qm.w_star)
    np.testing.assert_array_equal(back.hessian_eigenvalues, qm.hessian_eigenvalues)
    assert back.hessian_rest == qm.hessian_rest
    assert back.metadata == qm.metadata
    meta = json.loads((tmp_path / "model.json").read_text())
    assert meta["format"] == "sdesim.QuadraticModel" and meta["format_version"] == 1
    assert meta["dim"] == 4
    assert meta["hessian_storage"] == ("eigenpairs" if compact else "dense")
    assert meta["noise_storage"] == ("lowrank" if compact else "dense")
    assert meta["provenance"]["source"] == "unit test"
    assert meta["summary"]["noise_trace"] == pytest.approx(np.trace(qm.S))
    assert meta["summary"]["top_hessian_eigenvalues"][0] == pytest.approx(qm.hessian_eigenvalues[0])


def test_load_rejects_other_format_versions(tmp_path):
    qm = sd.QuadraticModel(hessian=np.eye(2))
    qm.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as data:
        arrays = dict(data)
    meta = json.loads(str(arrays.pop("metadata")))
    meta["format_version"] = 99
    np.savez(tmp_path / "future.npz", metadata=np.array(json.dumps(meta)), **arrays)
    with pytest.raises(FormatError, match="version 99.*version 1"):
        sd.QuadraticModel.load(tmp_path / "future.npz")
    np.savez(tmp_path / "other.npz", w=np.zeros(2))
    with pytest.raises(FormatError, match="metadata"):
        sd.QuadraticModel.load(tmp_path / "other.npz")


@pytest.mark.parametrize("lr,batch,h,s", [(0.1, 1, 2.0, 1.0), (0.5, 4, 3.0, 0.7), (0.01, 32, 0.5, 2.0)])
def test_lyapunov_1d_closed_forms(lr, batch, h, s):
    qm = sd.QuadraticModel(hessian=[[h]], noise_covariance=[[s]])
    p_disc = qm.stationary_covariance(lr, batch, kind="discrete")
    p_sde = qm.stationary_covariance(lr, batch, kind="sde")
    assert p_disc[0, 0] == pytest.approx(lr * s / (batch * h * (2 - lr * h)), rel=1e-12)
    assert p_sde[0, 0] == pytest.approx(lr * s / (2 * batch * h), rel=1e-12)


def test_lyapunov_nd_equations():
    q, lam, f, d, w_star = random_model(dim=5, seed=6)
    qm = sd.QuadraticModel(hessian=(q * lam) @ q.T, noise_covariance=f @ f.T + np.diag(d))
    lr, batch = 0.2, 8
    h, s = qm.H, qm.S
    p = qm.stationary_covariance(lr, batch, kind="discrete")
    a = np.eye(5) - lr * h
    np.testing.assert_allclose(p, a @ p @ a.T + lr ** 2 * s / batch, atol=1e-13)
    p = qm.stationary_covariance(lr, batch, kind="sde")
    np.testing.assert_allclose(h @ p + p @ h, lr / batch * s, atol=1e-13)
    np.testing.assert_allclose(p, p.T)


def test_lyapunov_errors():
    qm = sd.QuadraticModel(hessian=np.diag([4.0, 1.0]), noise_covariance=np.eye(2))
    with pytest.raises(ValueError, match="unstable"):
        qm.stationary_covariance(0.5, 1)
    qm.stationary_covariance(0.5, 1, kind="sde")  # the SDE is stable for any lr
    with pytest.raises(ValueError, match="kind"):
        qm.stationary_covariance(0.1, 1, kind="flow")
    flat = sd.QuadraticModel(hessian=np.diag([1.0, 0.0]), noise_covariance=np.eye(2))
    with pytest.raises(ValueError, match="no stationary"):
        flat.stationary_covariance(0.1, 1, kind="sde")


def test_bad_inputs():
    with pytest.raises(ShapeError, match="exactly one"):
        sd.QuadraticModel()
    with pytest.raises(ShapeError, match="2-D"):
        sd.QuadraticModel(hessian=np.ones(3))
    with pytest.raises(ShapeError, match=r"\(2, 2\)"):
        sd.QuadraticModel(hessian=np.eye(2), noise_covariance=np.eye(3))
    with pytest.raises(ShapeError, match="w_star"):
        sd.QuadraticModel(hessian=np.eye(2), w_star=np.zeros(3))
    with pytest.raises(ValueError, match="hessian is not symmetric"):
        sd.QuadraticModel(hessian=[[1.0, 0.5], [0.0, 1.0]])
    with pytest.raises(ValueError, match="not positive semi-definite"):
        sd.QuadraticModel(hessian=np.eye(2), noise_covariance=np.diag([1.0, -0.5]))
    with pytest.raises(ValueError, match="noise_diagonal must be non-negative"):
        sd.QuadraticModel(hessian=np.eye(2), noise_diagonal=[1.0, -1.0])
    with pytest.raises(NonFiniteError, match="hessian"):
        sd.QuadraticModel(hessian=[[np.nan, 0.0], [0.0, 1.0]])
    with pytest.raises(NonFiniteError, match="noise_factor"):
        sd.QuadraticModel(hessian=np.eye(2), noise_factor=[[np.inf], [0.0]])
    with pytest.raises(ValueError, match="not orthonormal"):
        sd.QuadraticModel(hessian_eigenvalues=[1.0, 2.0], hessian_eigenvectors=[[1.0, 1.0], [0.0, 1.0], [0.0, 0.0]])
    with pytest.raises(ShapeError, match="hessian_eigenvectors must have shape"):
        sd.QuadraticModel(hessian_eigenvalues=[1.0, 2.0], hessian_eigenvectors=np.eye(3)[:, :1])
    with pytest.raises(ShapeError, match="either a dense"):
        sd.QuadraticModel(hessian=np.eye(2), noise_covariance=np.eye(2), noise_diagonal=[1.0, 1.0])
    qm = sd.QuadraticModel(hessian=np.eye(2))
    with pytest.raises(ShapeError, match=r"\(\.\.\., 2\)"):
        qm.grad(np.zeros(3))
