"""Top eigenpairs of a symmetric operator known only through matrix-vector products.

Used for Hessians (through Hessian-vector products) and gradient covariances of
networks with ``P ~ 10^4`` parameters, where the ``P x P`` matrix is never formed.
The work is done by ARPACK's implicitly restarted Lanczos method
(``scipy.sparse.linalg.eigsh`` on a ``LinearOperator``), started from a seeded
random vector so results are reproducible.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse.linalg import LinearOperator, eigsh

from sdesim.errors import ConfigError, ShapeError

__all__ = ["lanczos"]


def lanczos(matvec, dim, k=1, which="LA", tol=1e-8, maxiter=None, ncv=None, seed=0):
    """Top-``k`` eigenpairs of a symmetric ``dim x dim`` operator ``A``.

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
        op = LinearOperator((dim, dim), matvec=lambda v: matvec(np.ravel(v)), dtype=np.float64)
        v0 = np.random.default_rng(seed).standard_normal(dim)
        ncv = min(dim, max(2 * k + 1, 20)) if ncv is None else ncv
        vals, vecs = eigsh(op, k=k, which=which, tol=tol, maxiter=maxiter, ncv=ncv, v0=v0)
        order = np.argsort(vals) if which == "SA" else np.argsort(-(np.abs(vals) if which == "LM" else vals))
        vals, vecs = vals[order], vecs[:, order]
    pivot = vecs[np.abs(vecs).argmax(axis=0), np.arange(k)]
    return vals, vecs * np.where(pivot < 0, -1.0, 1.0)
