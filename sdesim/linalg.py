r"""Linear algebra shared by the losses, the analyses and the networks.

- :func:`lyapunov_covariance`: stationary covariance of SGD and its diffusions on a
  quadratic (discrete and continuous Lyapunov equations);
- :func:`check_psd`: the one check of a covariance (shape, finite, symmetric, PSD);
- :func:`psd_eigen`: eigendecomposition of a covariance with round-off eigenvalues zeroed,
  the one rule behind every square-root factor of a noise covariance;
- :func:`lanczos`: top eigenpairs of a symmetric operator known only through products;
- :func:`fit_line`: weighted least-squares line, behind the order and Arrhenius fits.

scipy is imported inside the functions that use it, so ``import sdesim`` stays fast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from sdesim.errors import ConfigError, NonFiniteError, NonPSDError, ShapeError

__all__ = ["LYAPUNOV_KINDS", "LineFit", "check_psd", "fit_line", "lanczos", "lyapunov_covariance", "psd_eigen",
           "psd_root"]

LYAPUNOV_KINDS = ("discrete", "sde", "modified")

#: Eigenvalues at most this times the largest are round-off and are set to zero.
PSD_RTOL = 1e-14


def _square(name, a, dim=None):
    a = np.atleast_2d(np.asarray(a, dtype=float))
    if a.ndim != 2 or a.shape[0] != a.shape[1] or (dim is not None and a.shape[0] != dim):
        raise ShapeError(f"{name} must be a square matrix{'' if dim is None else f' of size {dim}'}, "
                         f"got shape {a.shape}")
    return a


def lyapunov_covariance(H, S, lr, batch_size=1, kind="discrete") -> np.ndarray:
    r"""Stationary covariance :math:`P` of SGD on :math:`C = \frac12 w^\top H w` with gradient noise :math:`S`.

    .. math::

        \text{discrete (SGD):}\quad & P = A P A^\top + \frac{\eta^2}{B} S, \qquad A = I - \eta H, \\
        \text{sde:}\quad & H P + P H^\top = \frac{\eta}{B} S, \\
        \text{modified:}\quad & \tilde H P + P \tilde H^\top = \frac{\eta}{B} S, \qquad \tilde H = H + \frac{\eta}{2} H^2,

    solved by ``scipy.linalg.solve_discrete_lyapunov`` / ``solve_continuous_lyapunov`` and
    symmetrised. ``H`` need not be symmetric (non-equilibrium drifts).

    Parameters
    ----------
    H, S : array_like, shape (dim, dim) (or scalars in 1D)
        Drift (Hessian) matrix and per-sample gradient covariance :math:`\Sigma_1`.
    lr : float
    batch_size : int
    kind : {"discrete", "sde", "modified"}

    Raises
    ------
    ConfigError
        Unknown ``kind``; an eigenvalue of the drift with real part ``<= 0`` (no stationary
        state); ``lr |h|_max >= 2`` for ``"discrete"`` (SGD is linearly unstable).
    ShapeError
        ``H`` or ``S`` not square of one size.
    """
    from scipy.linalg import solve_continuous_lyapunov, solve_discrete_lyapunov

    H = _square("H", H)
    S = _square("S", S, H.shape[0])
    lr, batch_size = float(lr), int(batch_size)
    if not lr > 0 or batch_size < 1:
        raise ConfigError(f"need lr > 0 and batch_size >= 1, got lr={lr}, batch_size={batch_size}")
    if kind not in LYAPUNOV_KINDS:
        raise ConfigError(f"kind must be one of {LYAPUNOV_KINDS}, got {kind!r}")
    drift = H + 0.5 * lr * H @ H if kind == "modified" else H
    eig = np.linalg.eigvals(drift).real
    if eig.min() <= 0:
        raise ConfigError(f"drift matrix has an eigenvalue {eig.min():.3g} <= 0: no stationary distribution")
    if kind == "discrete":
        h_max = np.abs(np.linalg.eigvals(H)).max()
        if lr * h_max >= 2:
            raise ConfigError(f"lr * h_max = {lr * h_max:.4g} >= 2: SGD is linearly unstable "
                              f"(need lr < {2 / h_max:.4g})")
        P = solve_discrete_lyapunov(np.eye(H.shape[0]) - lr * H, lr ** 2 / batch_size * S)
    else:
        P = solve_continuous_lyapunov(drift, lr / batch_size * S)
    return 0.5 * (P + P.T)


def check_psd(name: str, S, dim: int | None = None, where=None) -> np.ndarray:
    """``S`` (``(..., dim, dim)``) as a float array, checked finite, symmetric and positive semi-definite.

    The one rule wherever a covariance or diffusion tensor enters: symmetric to
    ``1e-10 max|S|``, smallest eigenvalue ``>= -1e-10 max|S|``. Raises :class:`ShapeError`
    on a wrong shape and :class:`NonPSDError` naming the smallest eigenvalue (and, for a
    stack, the offending entry of ``where``, points ``(..., dim)``).
    """
    S = np.asarray(S, dtype=float)
    if S.ndim < 2 or S.shape[-1] != S.shape[-2] or (dim is not None and S.shape[-1] != dim):
        want = f"({dim}, {dim})" if dim is not None else "(d, d)"
        raise ShapeError(f"{name} must have trailing shape {want}, got {S.shape}")
    if not np.isfinite(S).all():
        raise NonPSDError(f"{name} has non-finite entries")
    if S.size == 0:
        return S
    scale = max(float(np.abs(S).max()), np.finfo(float).tiny)
    St = np.swapaxes(S, -1, -2)
    asym = np.abs(S - St).max(axis=(-1, -2))
    lam = np.linalg.eigvalsh(0.5 * (S + St))[..., 0]
    bad = (asym > 1e-10 * scale) | (lam < -1e-10 * scale)
    if np.any(bad):
        k = np.unravel_index(np.argmax(bad), bad.shape)
        at = f" at w = {np.asarray(where)[k]}" if where is not None else ""
        what = "symmetric" if asym[k] > 1e-10 * scale else "positive semi-definite"
        raise NonPSDError(f"{name} is not {what}{at}: max |S - S^T| = {float(asym[k]):.3g}, "
                          f"smallest eigenvalue {float(lam[k]):.3g}")
    return S


def psd_eigen(S):
    r"""Eigenpairs :math:`S = U \operatorname{diag}(\mu) U^\top` of a covariance, round-off zeroed.

    Eigenvalues :math:`\mu_i \le 10^{-14} \max(\mu_{\max}, 0)` (``PSD_RTOL``) are set to 0:
    they are round-off (e.g. of a clipped matrix rebuilt from its eigenpairs), and their
    square root would inject noise of relative size ``1e-7`` along directions that have
    none. A factor is ``U * sqrt(mu)``. Works on stacks ``(..., dim, dim)``.

    Returns
    -------
    mu : ndarray, shape (..., dim)
        Ascending (``numpy.linalg.eigh``), non-negative.
    U : ndarray, shape (..., dim, dim)
    """
    mu, U = np.linalg.eigh(S)
    tol = PSD_RTOL * np.maximum(mu[..., -1:], 0.0)
    return np.where(mu > tol, mu, 0.0), U



@njit(inline="always", cache=True)
def psd_root(mu, j):
    """:math:`\\sqrt{\\mu_j}` under :func:`psd_eigen`'s rule, for compiled kernels (``mu`` ascending)."""
    return math.sqrt(mu[j]) if mu[j] > PSD_RTOL * max(mu[-1], 0.0) else 0.0


def lanczos(matvec, dim, k=1, which="LA", tol=1e-8, maxiter=None, ncv=None, seed=0):
    """Top-``k`` eigenpairs of a symmetric ``dim x dim`` operator ``A`` known through ``v -> A v``.

    For Hessians (through Hessian-vector products) and gradient covariances of
    networks with ``P ~ 10^4`` parameters, where the matrix is never formed: ARPACK's
    implicitly restarted Lanczos method (``scipy.sparse.linalg.eigsh`` on a
    ``LinearOperator``), started from a seeded random vector so results are reproducible.

    Parameters
    ----------
    matvec : callable
        ``v (dim,) -> A v (dim,)``; ``A`` must be symmetric.
    dim : int
        Dimension of the space.
    k : int
        Number of eigenpairs, ``1 <= k <= dim``.
    which : {"LA", "LM", "SA"}
        Largest algebraic (default: the sharpest Hessian directions), largest
        magnitude, or smallest algebraic eigenvalues.
    tol : float
        Relative accuracy of the Ritz values (ARPACK's ``tol``).
    maxiter, ncv : int, optional
        Passed to ``eigsh``: restarts and Lanczos basis size (default
        ``min(dim, max(2k + 1, 20))``).
    seed : int
        Seed of the starting vector.

    Returns
    -------
    eigenvalues : ndarray, shape (k,)
        Sorted from largest to smallest (``which="SA"``: smallest first).
    eigenvectors : ndarray, shape (dim, k)
        Orthonormal columns, ``A V = V diag(eigenvalues)``; each column's sign is
        fixed so its largest-magnitude entry is positive.

    Notes
    -----
    For ``k >= dim - 1`` (outside ARPACK's range) the matrix is assembled from
    ``dim`` products and diagonalised densely.
    """
    dim, k = int(dim), int(k)
    if not 1 <= k <= dim:
        raise ShapeError(f"need 1 <= k <= dim, got k = {k}, dim = {dim}")
    if which not in ("LA", "LM", "SA"):
        raise ConfigError(f"which must be 'LA', 'LM' or 'SA', got {which!r}")
    if k >= dim - 1:
        A = np.column_stack([matvec(e) for e in np.eye(dim)])
        vals, vecs = np.linalg.eigh(0.5 * (A + A.T))
        order = {"LA": np.argsort(-vals), "SA": np.argsort(vals), "LM": np.argsort(-np.abs(vals))}[which]
        vals, vecs = vals[order[:k]], vecs[:, order[:k]]
    else:
        from scipy.sparse.linalg import LinearOperator, eigsh

        op = LinearOperator((dim, dim), matvec=lambda v: matvec(np.ravel(v)), dtype=np.float64)
        v0 = np.random.default_rng(seed).standard_normal(dim)
        ncv = min(dim, max(2 * k + 1, 20)) if ncv is None else ncv
        vals, vecs = eigsh(op, k=k, which=which, tol=tol, maxiter=maxiter, ncv=ncv, v0=v0)
        order = np.argsort(vals) if which == "SA" else np.argsort(-(np.abs(vals) if which == "LM" else vals))
        vals, vecs = vals[order], vecs[:, order]
    pivot = vecs[np.abs(vecs).argmax(axis=0), np.arange(k)]
    return vals, vecs * np.where(pivot < 0, -1.0, 1.0)


@dataclass(frozen=True)
class LineFit:
    r"""Weighted least-squares line :math:`y = a + b x` (:func:`fit_line`).

    Attributes
    ----------
    slope, intercept : float
        :math:`b` and :math:`a`.
    slope_se : float
        Standard error of :math:`b`.
    residuals : ndarray, shape (n,)
        :math:`y_i - a - b x_i`.
    """

    slope: float
    intercept: float
    slope_se: float
    residuals: np.ndarray


def fit_line(x, y, weights=None, absolute_weights=False) -> LineFit:
    r"""Fit :math:`y = a + b x` minimising :math:`\sum_i w_i (y_i - a - b x_i)^2`.

    .. math::

        b = \frac{\sum_i w_i (x_i - \bar x)(y_i - \bar y)}{S_{xx}}, \qquad
        a = \bar y - b \bar x, \qquad S_{xx} = \sum_i w_i (x_i - \bar x)^2,

    with weighted means :math:`\bar x, \bar y`. The standard error of :math:`b` is
    :math:`\sqrt{s^2 / S_{xx}}`, :math:`s^2 = \sum_i w_i r_i^2 / (n - 2)` the residual
    variance (0 for two points, which fit exactly); with ``absolute_weights`` the weights
    are inverse variances :math:`1 / \sigma_i^2` and it is :math:`1 / \sqrt{S_{xx}}`
    (scipy's ``absolute_sigma``).

    Parameters
    ----------
    x, y : array_like, shape (n,)
        ``n >= 2`` finite points.
    weights : array_like, shape (n,), optional
        Positive weights; default ones.
    absolute_weights : bool

    Raises
    ------
    ShapeError
        Mismatched lengths, fewer than two points, or all ``x`` equal.
    NonFiniteError
        Non-finite or non-positive weights.
    """
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float).ravel()
    if not x.size == y.size == w.size or x.size < 2:
        raise ShapeError(f"need >= 2 points and weights of one length, got {x.size}, {y.size}, {w.size}")
    if not (np.isfinite(w).all() and (w > 0).all()):
        raise NonFiniteError(f"weights must be finite and positive, got {w}")
    xm, ym = np.average(x, weights=w), np.average(y, weights=w)
    sxx = np.sum(w * (x - xm) ** 2)
    if sxx == 0:
        raise ShapeError(f"all x are equal ({x[0]:g}): no slope to fit")
    slope = np.sum(w * (x - xm) * (y - ym)) / sxx
    intercept = ym - slope * xm
    res = y - intercept - slope * x
    if absolute_weights:
        se = np.sqrt(1.0 / sxx)
    else:
        dof = x.size - 2
        se = np.sqrt((np.sum(w * res ** 2) / dof if dof else 0.0) / sxx)
    return LineFit(slope=float(slope), intercept=float(intercept), slope_se=float(se), residuals=res)
