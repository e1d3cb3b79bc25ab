"""Sharpness: exact Hessian spectra on known landscapes and quadratic models, the 2/lr line."""

import numpy as np
import pytest

import sdesim as sd
from sdesim.analysis.sharpness import (
    hessian_eigenvalues,
    hvp_eigenvalues,
    sharpness,
    sharpness_along,
    stability_threshold,
)
from sdesim.errors import ShapeError


def test_double_well_known_curvatures():
    loss = sd.catalog.double_well_1d().loss                     # C'' = 12 x^2 - 4
    x = np.array([[-1.0], [0.0], [0.5], [np.nan]])
    np.testing.assert_allclose(sharpness(loss, x)[:3], [8.0, -4.0, -1.0], atol=1e-12)
    assert np.isnan(sharpness(loss, x)[3])


def test_muller_brown_minima_match_dense_eigvalsh():
    mb = sd.catalog.muller_brown()
    W = np.array([m.location for m in mb.minima])
    ev = hessian_eigenvalues(mb.loss, W, k=2)
    np.testing.assert_allclose(ev, np.linalg.eigvalsh(mb.loss.hessian(W))[:, ::-1], rtol=1e-12)
    assert (ev > 0).all()


def test_quadratic_model_dense_and_lanczos():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(100, 100)))
    lam = np.linspace(5.0, 0.1, 100)
    H = (q * lam) @ q.T
    dense = sd.QuadraticModel(hessian=H)                        # dim 100 > 64: Lanczos
    low = sd.QuadraticModel(hessian_eigenvalues=lam[:3], hessian_eigenvectors=q[:, :3], hessian_rest=0.1)
    W = rng.normal(size=(4, 3, 100))
    np.testing.assert_allclose(hessian_eigenvalues(dense, W, k=3), np.broadcast_to(lam[:3], (4, 3, 3)), rtol=1e-8)
    np.testing.assert_allclose(sharpness(low, W[0]), 5.0, rtol=1e-8)


def test_lanczos_on_hessian_vector_products():
    """H(w) = A + diag(w^2) in 40 dimensions, known only through products: top 3 eigenvalues at 2 x 2 points
    agree with eigvalsh to 1e-8; a NaN point gives NaN."""
    rng = np.random.default_rng(2)
    A = rng.normal(size=(40, 40))
    A = A @ A.T / 40
    W = rng.normal(size=(2, 2, 40))
    W[1, 1, 0] = np.nan
    ev = hvp_eigenvalues(lambda w, v: A @ v + w ** 2 * v, W, k=3)
    for idx in [(0, 0), (0, 1), (1, 0)]:
        np.testing.assert_allclose(ev[idx], np.linalg.eigvalsh(A + np.diag(W[idx] ** 2))[::-1][:3], rtol=1e-8)
    assert np.isnan(ev[1, 1]).all()


def test_gd_converges_only_below_stability_threshold():
    """GD on a 1D quadratic (h = 4): converges for lr < 2/h = 0.5, diverges above; sharpness along the run is h."""
    qm = sd.QuadraticModel(hessian=[[4.0]])
    for lr, stable in [(0.45, True), (0.55, False)]:
        res = sd.simulate(qm, sd.GD(lr=lr), w0=[1.0], steps=200, record_every=20, backend="numpy",
                          on_divergence="ignore")
        s = sharpness_along(res, qm)
        assert s.shape == res.loss.shape
        assert (s[np.isfinite(s)] == 4.0).all()
        assert (4.0 < stability_threshold(lr)) == stable
        assert (abs(res.w[-1, 0, 0]) < 1e-3 if stable else not np.isfinite(res.w[-1, 0, 0]) or abs(res.w[-1, 0, 0]) > 1e3)


def test_bad_input():
    loss = sd.catalog.double_well_1d().loss
    with pytest.raises(ShapeError):
        sharpness(loss, np.zeros((3, 2)))
    with pytest.raises(ShapeError):
        hessian_eigenvalues(loss, np.zeros((3, 1)), k=2)
    with pytest.raises(ValueError):
        stability_threshold(0.0)
    np.testing.assert_allclose(stability_threshold(np.array([0.1, 1.0])), [20.0, 2.0])
