"""The PyTorch adapter (``sdesim.nets.torch_adapter``) against the NumPy MLP on identical weights."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sdesim.errors import ShapeError
from sdesim.nets import MLP, Dataset, extract
from sdesim.nets.torch_adapter import (
    TorchObjective,
    extract_quadratic_torch,
    mlp_to_torch,
)

LOSSES = {
    "cross_entropy": torch.nn.functional.cross_entropy,
    "squared": lambda z, y: 0.5 * ((z - torch.nn.functional.one_hot(y, z.shape[1]).to(z.dtype)) ** 2).sum(1).mean(),
}


def _setup(activation, loss, n=60, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6))
    y = rng.integers(0, 3, n)
    net = MLP((6, 5, 4, 3), activation, loss, weight_decay=1e-2)
    w = net.init(seed) + 0.1 * rng.standard_normal(net.n_params)
    module, to_torch = mlp_to_torch(net, w)
    obj = TorchObjective(module, x, y, LOSSES[loss], weight_decay=1e-2, chunk_size=25)
    return rng, x, y, net, w, obj, to_torch


@pytest.mark.parametrize(("activation", "loss"), [("tanh", "cross_entropy"), ("gelu", "squared"),
                                                  ("relu", "cross_entropy")])
def test_products_match_numpy_mlp(activation, loss):
    """Loss, gradient, HVP, per-sample gradients, G v, G^T u and Sigma_1 v agree to 1e-10 relative."""
    rng, x, y, net, w, obj, to_torch = _setup(activation, loss)
    wt = to_torch(w)
    np.testing.assert_array_equal(obj.flat(), wt)
    np.testing.assert_array_equal(to_torch.inverse(wt), w)
    v, u = rng.standard_normal(net.n_params), rng.standard_normal(len(y))
    close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12 * np.abs(b).max())
    close(obj.loss(wt), net.loss(w, x, y))
    close(obj.grad(wt), to_torch(net.grad(w, x, y)))
    close(obj.hvp(wt, to_torch(v)), to_torch(net.hvp(w, x, y, v)))
    close(obj.per_sample_grads(wt), to_torch(net.per_sample_grads(w, x, y)))
    J = net.sample_jacobian(w, x, y)
    close(obj.matvec(wt, to_torch(v)), J.matvec(v))
    close(obj.rmatvec(wt, u), to_torch(J.rmatvec(u)))
    close(obj.covariance_matvec(wt, to_torch(v)), to_torch(J.covariance_matvec(v)))


def test_extraction_matches_numpy_extract():
    """Same weights, no refinement: identical top-4 Hessian and noise eigenvalues, the same basis
    (mapped between layouts; Lanczos fixes each sign by the largest entry) and the same S."""
    _, x, y, net, w, obj, to_torch = _setup("tanh", "cross_entropy")
    ref = extract(net, Dataset(x, y, 3, "tiny"), w, k=4, refine=False)
    ext = extract_quadratic_torch(obj.module, x, y, LOSSES["cross_entropy"], k=4, refine=False, weight_decay=1e-2)
    np.testing.assert_allclose(ext.model.hessian_eigenvalues, ref.model.hessian_eigenvalues, rtol=1e-8)
    np.testing.assert_allclose(ext.noise_eigenvalues, ref.noise_eigenvalues, rtol=1e-8)
    np.testing.assert_allclose(ext.basis, to_torch(ref.basis.T).T, atol=1e-7)
    np.testing.assert_allclose(ext.model.S, ref.model.S, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(ext.report["noise_trace"], ref.report["noise_trace"], rtol=1e-10)
    np.testing.assert_allclose(ext.report["grad_norm"], ref.report["grad_norm"], rtol=1e-10)


def test_refined_extraction_reaches_the_numpy_minimum():
    """L-BFGS from the same start on both: the same minimum (|grad C| < 1e-6) and eigenvalues to 1e-5."""
    _, x, y, net, w, obj, to_torch = _setup("tanh", "cross_entropy")
    ref = extract(net, Dataset(x, y, 3, "tiny"), w, k=3, gtol=1e-9, maxiter=5000)
    ext = extract_quadratic_torch(obj.module, x, y, LOSSES["cross_entropy"], k=3, weight_decay=1e-2,
                                  gtol=1e-9, maxiter=5000)
    assert ext.report["grad_norm"] < 1e-6
    np.testing.assert_allclose(ext.w_star, to_torch(ref.w_star), atol=1e-5)
    np.testing.assert_allclose(ext.model.hessian_eigenvalues, ref.model.hessian_eigenvalues, rtol=1e-5)


def test_bad_shapes():
    _, x, y, net, _, obj, _ = _setup("tanh", "cross_entropy")
    with pytest.raises(ShapeError, match=str(net.n_params)):
        obj.grad(np.zeros(net.n_params + 1))
    with pytest.raises(ShapeError, match="targets"):
        TorchObjective(obj.module, x, y[:-1], LOSSES["squared"])
