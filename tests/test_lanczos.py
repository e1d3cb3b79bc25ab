"""Lanczos top-k eigenpairs on a matrix-vector operator against dense numpy.linalg.eigh."""

import numpy as np
import pytest

from sdesim.analysis.lanczos import lanczos
from sdesim.errors import ShapeError


def _random_symmetric(n, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, n))
    return 0.5 * (a + a.T)


@pytest.mark.parametrize("which", ["LA", "SA", "LM"])
def test_lanczos_matches_eigh(which):
    A = _random_symmetric(200)
    vals, vecs = lanczos(lambda v: A @ v, 200, k=6, which=which)
    ev, U = np.linalg.eigh(A)
    order = {"LA": np.argsort(-ev), "SA": np.argsort(ev), "LM": np.argsort(-np.abs(ev))}[which][:6]
    np.testing.assert_allclose(vals, ev[order], rtol=0, atol=1e-9)
    # eigenvectors agree up to sign; Ritz residuals vanish; orthonormal
    np.testing.assert_allclose(np.abs(np.sum(vecs * U[:, order], axis=0)), 1.0, atol=1e-8)
    np.testing.assert_allclose(A @ vecs, vecs * vals, atol=1e-8)
    np.testing.assert_allclose(vecs.T @ vecs, np.eye(6), atol=1e-10)


def test_lanczos_low_rank_plus_noise_is_reproducible():
    rng = np.random.default_rng(1)
    Q, _ = np.linalg.qr(rng.standard_normal((500, 5)))
    A = (Q * np.array([50.0, 20.0, 10.0, 5.0, 2.0])) @ Q.T + 1e-3 * _random_symmetric(500, 2)
    v1, V1 = lanczos(lambda v: A @ v, 500, k=5, seed=3)
    v2, V2 = lanczos(lambda v: A @ v, 500, k=5, seed=3)
    np.testing.assert_array_equal(v1, v2)
    np.testing.assert_array_equal(V1, V2)
    np.testing.assert_allclose(v1, np.linalg.eigvalsh(A)[::-1][:5], atol=1e-9)


def test_dense_fallback_for_k_near_dim():
    A = _random_symmetric(6, 4)
    vals, vecs = lanczos(lambda v: A @ v, 6, k=6)
    np.testing.assert_allclose(vals, np.linalg.eigvalsh(A)[::-1], atol=1e-12)
    np.testing.assert_allclose(A @ vecs, vecs * vals, atol=1e-12)


def test_bad_k_and_which():
    with pytest.raises(ShapeError, match="k"):
        lanczos(lambda v: v, 5, k=0)
    with pytest.raises(ShapeError, match="k"):
        lanczos(lambda v: v, 5, k=6)
    with pytest.raises(ValueError, match="which"):
        lanczos(lambda v: v, 50, k=2, which="BE")
