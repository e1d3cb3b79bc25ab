r"""Sharpness: the top Hessian eigenvalues along trajectories, and the linear stability line ``2 / lr``.

GD on a quadratic is stable iff every Hessian eigenvalue lies in ``(0, 2 / lr)``;
full-batch GD on networks drives the sharpness :math:`\lambda_{\max}(\nabla^2 C)` up to
about ``2 / lr`` and hovers there (edge of stability, Cohen et al. 2021).
"""

from __future__ import annotations

import numpy as np

from sdesim.errors import ConfigError, ShapeError
from sdesim.linalg import lanczos
from sdesim.losses.base import as_loss

__all__ = ["hessian_eigenvalues", "hvp_eigenvalues", "sharpness", "sharpness_along", "stability_threshold"]

#: Above this dimension a quadratic model's spectrum is computed by Lanczos on Hessian-vector products.
DENSE_MAX_DIM = 64


def stability_threshold(lr) -> float | np.ndarray:
    r"""Linear stability limit of GD: sharpness :math:`\lambda_{\max} < 2 / \eta`.

    Raises
    ------
    ValueError
        ``lr <= 0``.
    """
    lr = np.asarray(lr, dtype=float)
    if np.any(~(lr > 0)):
        raise ConfigError(f"lr must be positive, got {lr}")
    return 2.0 / lr if lr.ndim else float(2.0 / lr)


def _quadratic_top(model, k):
    """Top-``k`` eigenvalues of a QuadraticModel's constant Hessian."""
    dim = model.dim
    if model.hessian_rest is None and dim <= DENSE_MAX_DIM:
        return model.hessian_eigenvalues[:k].copy()
    vals, _ = lanczos(lambda v: model.hessian_vector(v), dim, k=k)
    return vals


def hessian_eigenvalues(loss, W, k=1) -> np.ndarray:
    r"""Top-``k`` eigenvalues of :math:`\nabla^2 C(w)` at each point, largest first.

    Parameters
    ----------
    loss : Loss, FiniteSumLoss, QuadraticModel or catalog landscape
        Symbolic and finite-sum losses: exact Hessians, diagonalised together
        (``numpy.linalg.eigvalsh``). Quadratic models: the constant ``H``,
        by Lanczos on Hessian-vector products above ``DENSE_MAX_DIM`` dimensions
        or for eigenpair storage.
    W : array_like, shape (..., dim)
        Points. Non-finite points (diverged particles) give NaN.
    k : int
        Number of eigenvalues, ``1 <= k <= dim``.

    Returns
    -------
    ndarray, shape (..., k)
    """
    loss = as_loss(loss)
    W = np.asarray(W, dtype=float)
    dim = loss.dim
    if W.ndim == 0 or W.shape[-1] != dim:
        raise ShapeError(f"W must have shape (..., {dim}), got {W.shape}")
    if not 1 <= int(k) <= dim:
        raise ShapeError(f"need 1 <= k <= dim = {dim}, got k = {k}")
    k = int(k)
    out = np.full(W.shape[:-1] + (k,), np.nan)
    ok = np.isfinite(W).all(axis=-1)
    if not ok.any():
        return out
    if loss.kind == "quadratic":
        out[ok] = _quadratic_top(loss, k)
        return out
    hess = np.asarray(loss.hessian(W[ok]))
    out[ok] = np.linalg.eigvalsh(hess)[..., ::-1][..., :k]
    return out


def hvp_eigenvalues(hvp, W, k=1, tol=1e-8, seed=0) -> np.ndarray:
    r"""Top-``k`` Hessian eigenvalues from Hessian-vector products, by Lanczos at each point.

    For models whose Hessian is never formed, e.g. networks:
    ``hvp = lambda w, v: net.hvp(w, x, y, v)``.

    Parameters
    ----------
    hvp : callable
        ``(w (dim,), v (dim,)) -> H(w) v``.
    W : array_like, shape (..., dim)
        Points (non-finite ones give NaN).
    k : int
    tol, seed
        Passed to :func:`sdesim.linalg.lanczos`.

    Returns
    -------
    ndarray, shape (..., k)
        Largest first.
    """
    W = np.asarray(W, dtype=float)
    if W.ndim == 0:
        raise ShapeError("W must have shape (..., dim)")
    flat = W.reshape(-1, W.shape[-1])
    out = np.full((len(flat), int(k)), np.nan)
    for n, w in enumerate(flat):
        if np.isfinite(w).all():
            out[n] = lanczos(lambda v, w=w: hvp(w, v), W.shape[-1], k=k, tol=tol, seed=seed)[0]
    return out.reshape(W.shape[:-1] + (int(k),))


def sharpness(loss, W) -> np.ndarray:
    r"""Largest Hessian eigenvalue :math:`\lambda_{\max}(\nabla^2 C(w))`; ``W (..., dim) -> (...)``."""
    return hessian_eigenvalues(loss, W, k=1)[..., 0]


def sharpness_along(result, loss) -> np.ndarray:
    """Sharpness at every recorded state of a ``Result``: ``(T, N)``, NaN for diverged particles.

    Compare with :func:`stability_threshold` of the run's ``lr``.
    """
    return sharpness(loss, result.w)
