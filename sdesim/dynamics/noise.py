r"""Per-sample gradient noise :math:`\Sigma_1(w)` of a loss, and its square-root factors.

Naming: ``*_covariance`` is :math:`\Sigma_1` itself, ``*_factor`` a matrix
:math:`G` with :math:`G G^T = \Sigma_1`. Where :math:`\Sigma_1` comes from:

- ``FiniteSumLoss``: the per-sample gradient covariance of its data, at ``w``;
- ``QuadraticModel``: its constant noise covariance ``S``;
- ``Loss``: the dynamic's ``noise_covariance`` (a constant matrix, or
  ``"hessian"`` for :math:`\Sigma_1(w) = \nabla^2 C(w)` clipped to its positive
  part) or ``noise_factor``; by default the identity (unit per-sample noise).
"""

from __future__ import annotations

import numpy as np

from sdesim.errors import ConfigError, ShapeError


def loss_kind(loss) -> str:
    """``"finite_sum"``, ``"quadratic"`` or ``"symbolic"``."""
    from sdesim.losses.finite_sum import FiniteSumLoss
    from sdesim.losses.quadratic import QuadraticModel
    if isinstance(loss, FiniteSumLoss):
        return "finite_sum"
    if isinstance(loss, QuadraticModel):
        return "quadratic"
    return "symbolic"


def check_noise_spec(dim: int, noise_covariance, noise_factor):
    """Validate a user-given noise covariance (matrix or ``"hessian"``) or factor."""
    if noise_covariance is not None and noise_factor is not None:
        raise ConfigError("give either noise_covariance or noise_factor, not both")
    if isinstance(noise_covariance, str):
        if noise_covariance != "hessian":
            raise ConfigError(f"noise_covariance must be a matrix or 'hessian', got {noise_covariance!r}")
    elif noise_covariance is not None:
        S = np.asarray(noise_covariance, dtype=float)
        if S.shape != (dim, dim):
            raise ShapeError(f"noise_covariance must have shape ({dim}, {dim}), got {S.shape}")
        if not np.allclose(S, S.T) or np.linalg.eigvalsh(S).min() < -1e-12 * max(1.0, abs(S).max()):
            raise ConfigError("noise_covariance must be symmetric positive semi-definite")
    if noise_factor is not None:
        F = np.asarray(noise_factor, dtype=float)
        if F.ndim != 2 or F.shape[0] != dim:
            raise ShapeError(f"noise_factor must have shape ({dim}, r), got {F.shape}")


def constant_factor(loss, noise_covariance=None, noise_factor=None):
    """Constant factor ``G`` (dim, r) of :math:`\\Sigma_1`, or ``None`` when it depends on ``w``."""
    kind = loss_kind(loss)
    if kind == "quadratic":
        return loss.noise_sqrt()
    if kind == "finite_sum" or isinstance(noise_covariance, str):
        return None
    if noise_factor is not None:
        return np.asarray(noise_factor, dtype=float)
    if noise_covariance is not None:
        return psd_factor(np.asarray(noise_covariance, dtype=float))
    return np.eye(loss.dim)


def per_sample_covariance(loss, W, t=0.0, noise_covariance=None, noise_factor=None):
    r""":math:`\Sigma_1(w)` for ``W`` of shape ``(..., dim)``; returns ``(..., dim, dim)``."""
    W = np.asarray(W, dtype=float)
    kind = loss_kind(loss)
    if kind == "finite_sum":
        return loss.noise_covariance(W)
    if isinstance(noise_covariance, str):
        H = loss.hessian(W, t)
        mu, U = np.linalg.eigh(H)
        return (U * np.maximum(mu, 0.0)[..., None, :]) @ np.swapaxes(U, -1, -2)
    G = constant_factor(loss, noise_covariance, noise_factor)
    return np.broadcast_to(G @ G.T, W.shape + (W.shape[-1],))


def psd_factor(S, rank=None):
    r"""Factor :math:`G` with :math:`G G^T = S` from the eigendecomposition (top ``rank`` pairs).

    Works on stacks ``(..., dim, dim)``. Eigenvalues below ``1e-14`` times the
    largest are round-off (e.g. of a clipped matrix rebuilt from its eigenpairs)
    and are set to zero: their square root would otherwise inject noise of
    relative size ``1e-7`` along directions that have none.
    """
    mu, U = np.linalg.eigh(S)
    tol = 1e-14 * np.maximum(mu[..., -1:], 0.0)
    mu = np.where(mu > tol, mu, 0.0)
    if rank is not None:
        mu, U = mu[..., -rank:], U[..., -rank:]
    return U * np.sqrt(mu)[..., None, :]
