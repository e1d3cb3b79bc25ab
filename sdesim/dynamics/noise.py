r"""Per-sample gradient noise :math:`\Sigma_1(w)`: validated once, resolved once, factorised by one rule.

Naming: ``*_covariance`` is :math:`\Sigma_1` itself, ``*_factor`` a matrix
:math:`G` with :math:`G G^T = \Sigma_1`. Where :math:`\Sigma_1` comes from:

- ``FiniteSumLoss``: the per-sample gradient covariance of its data, at ``w``;
- ``QuadraticModel``: its constant noise covariance ``S``;
- ``Loss``: the dynamic's ``noise_covariance`` (a constant matrix, or
  ``"hessian"`` for :math:`\Sigma_1(w) = \nabla^2 C(w)` clipped to its positive
  part) or ``noise_factor``; by default the identity (unit per-sample noise).

A loss that defines its own noise (``per_sample_noise``) refuses a dynamic's
``noise_covariance``/``noise_factor``: one source of noise per run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sdesim.errors import ConfigError, NonFiniteError, ShapeError
from sdesim.linalg import check_psd, psd_eigen
from sdesim.losses.base import DATA_KINDS


def check_factor(name: str, F, dim: int | None = None) -> np.ndarray:
    """A noise factor ``G`` of shape ``(dim, r)``, finite."""
    F = np.asarray(F, dtype=float)
    if F.ndim != 2 or (dim is not None and F.shape[0] != dim) or F.shape[1] < 1:
        raise ShapeError(f"{name} must have shape ({dim if dim is not None else 'd'}, r) with r >= 1, "
                         f"got {F.shape}")
    if not np.isfinite(F).all():
        raise NonFiniteError(f"{name} has non-finite entries")
    return F


def check_noise_spec(noise_covariance, noise_factor):
    """A dynamic's noise specification, validated (dimension checked when bound to a loss)."""
    if noise_covariance is not None and noise_factor is not None:
        raise ConfigError("give either noise_covariance or noise_factor, not both")
    if isinstance(noise_covariance, str):
        if noise_covariance != "hessian":
            raise ConfigError(f"noise_covariance must be a matrix or 'hessian', got {noise_covariance!r}")
        return noise_covariance, None
    if noise_covariance is not None:
        return check_psd("noise_covariance", noise_covariance), None
    if noise_factor is not None:
        return None, check_factor("noise_factor", noise_factor)
    return None, None


def psd_factor(S, rank=None):
    r"""Factor :math:`G` with :math:`G G^T = S` from the eigendecomposition (top ``rank`` pairs).

    Works on stacks ``(..., dim, dim)``. Round-off eigenvalues are zero
    (:func:`sdesim.linalg.psd_eigen`, the one rule of every backend's factors).
    """
    mu, U = psd_eigen(S)
    if rank is not None:
        mu, U = mu[..., -rank:], U[..., -rank:]
    return U * np.sqrt(mu)[..., None, :]


def clipped_hessian(loss, W, t=0.0):
    r"""The Hessian's positive part :math:`U \max(\mu, 0) U^T`: ``(..., dim, dim)``."""
    mu, U = np.linalg.eigh(loss.hessian(W, t))
    return (U * np.maximum(mu, 0.0)[..., None, :]) @ np.swapaxes(U, -1, -2)


@dataclass(frozen=True, eq=False)
class Noise:
    r"""The per-sample noise of a run, resolved: :math:`\Sigma_1 = G G^T` before any ``noise_scale``.

    ``kind``: ``"constant"`` (``factor`` ``G (dim, r)``: additive noise), ``"hessian"``
    (the clipped Hessian at ``w``) or ``"data"`` (a finite sum's per-sample covariance
    at ``w``). State-dependent kinds keep the top ``rank`` eigenpairs when ``rank`` is set.
    """

    kind: str
    factor: np.ndarray | None = None
    rank: int | None = None

    @property
    def additive(self) -> bool:
        return self.kind == "constant"

    def n_columns(self, dim: int) -> int:
        """Number of noise columns ``r`` (Gaussians per particle and step)."""
        if self.additive:
            return self.factor.shape[1]
        return self.rank or dim

    def covariance(self, loss, W, t=0.0):
        r""":math:`\Sigma_1(w)`: ``(..., dim, dim)``."""
        if self.kind == "hessian":
            return clipped_hessian(loss, W, t)
        if self.kind == "data":
            return loss.noise_covariance_at(W, t)
        W = np.asarray(W, dtype=float)
        return np.broadcast_to(self.factor @ self.factor.T, W.shape + (W.shape[-1],))

    def factor_at(self, loss, W, t=0.0):
        """``G(w)``: the constant ``(dim, r)`` factor, or ``(N, dim, r)`` from :func:`psd_factor`."""
        if self.additive:
            return self.factor
        return psd_factor(self.covariance(loss, W, t), self.rank)


def resolve_noise(loss, dynamic) -> Noise:
    """The :class:`Noise` of ``dynamic`` (``SGD`` with Gaussian noise, or ``SGDDiffusion``) on ``loss``.

    Raises when an option cannot be honoured: a covariance given for a loss that defines
    its own noise, a covariance for isotropic noise, a matrix of the wrong dimension, a
    rank above the dimension.
    """
    dim = loss.dim
    cov, fac = dynamic.noise_covariance, dynamic.noise_factor
    given = cov is not None or fac is not None
    mode = getattr(dynamic, "noise", "anisotropic")        # SGD's Gaussian noise is Sigma_1 itself
    rank = dynamic.rank if mode == "lowrank" else None
    if rank is not None and rank > dim:
        raise ConfigError(f"noise='lowrank' with rank={rank} exceeds the dimension {dim}")
    if mode == "isotropic":
        if given:
            raise ConfigError("noise='isotropic' takes no noise_covariance/noise_factor (it is s I): "
                              "use noise='anisotropic' to give Sigma_1")
        return Noise("constant", np.eye(dim))
    if given and loss.per_sample_noise:
        raise ConfigError(f"{type(loss).__name__} defines its own gradient noise: "
                          "drop noise_covariance/noise_factor from the dynamic")
    if loss.kind in DATA_KINDS:
        return Noise("data", rank=rank)
    if loss.kind == "quadratic":
        if rank is not None:
            return Noise("constant", psd_factor(loss.S, rank))
        return Noise("constant", loss.noise_sqrt())
    if isinstance(cov, str):
        return Noise("hessian", rank=rank)
    if fac is not None:
        G = check_factor("noise_factor", fac, dim)
        return Noise("constant", G if rank is None else psd_factor(G @ G.T, rank))
    if cov is not None:
        return Noise("constant", psd_factor(check_psd("noise_covariance", cov, dim), rank))
    return Noise("constant", np.eye(dim) if rank is None else psd_factor(np.eye(dim), rank))
