"""Quadratic models: the loss and noise that make SGD a linear (Ornstein-Uhlenbeck) system.

.. math::

    C(w) = \\tfrac12 (w - w^*)^\\top H (w - w^*), \\qquad \\Sigma_1(w) = S \\ \\text{(constant)}.

``H`` is stored dense, or as its top-``k`` eigenpairs plus one value on the
orthogonal complement; ``S`` dense, or as a low-rank factor plus a diagonal.
Both compact forms are applied matrix-free, so models extracted from networks
with many parameters stay cheap.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sdesim.errors import ConfigError, FormatError, NonFiniteError, ShapeError
from sdesim.io import load_npz
from sdesim.linalg import check_psd, lyapunov_covariance, psd_eigen
from sdesim.losses.base import BaseLoss

FORMAT = "sdesim.QuadraticModel"
FORMAT_VERSION = 1

__all__ = ["QuadraticModel", "FORMAT", "FORMAT_VERSION"]


def _array(name, value, ndim):
    arr = np.asarray(value, dtype=float)
    if arr.ndim != ndim:
        raise ShapeError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise NonFiniteError(f"{name} has non-finite entries")
    return arr


def _symmetric(name, mat, dim):
    if mat.shape != (dim, dim):
        raise ShapeError(f"{name} must have shape ({dim}, {dim}), got {mat.shape}")
    scale = max(float(np.abs(mat).max()), 1.0)
    if not np.allclose(mat, mat.T, rtol=0.0, atol=1e-10 * scale):
        raise ConfigError(f"{name} is not symmetric (max |M - M^T| = {np.abs(mat - mat.T).max():.3g})")
    return 0.5 * (mat + mat.T)


class QuadraticModel(BaseLoss):
    """Quadratic loss ``C(w) = 1/2 (w - w*)^T H (w - w*)`` with constant per-sample noise covariance ``S``.

    Parameters
    ----------
    hessian : array_like, shape (dim, dim), optional
        Dense symmetric Hessian ``H``. Give this or ``hessian_eigenvalues``.
    noise_covariance : array_like, shape (dim, dim), optional
        Dense per-sample gradient covariance ``S = Sigma_1`` (symmetric positive
        semi-definite). Give this, or ``noise_factor`` and/or ``noise_diagonal``.
        Default: zero noise.
    w_star : array_like, shape (dim,), optional
        Minimiser (centre) ``w*``; default zeros.
    hessian_eigenvalues : array_like, shape (k,), optional
        Top-``k`` eigenvalues ``lambda`` of ``H``.
    hessian_eigenvectors : array_like, shape (dim, k), optional
        Orthonormal eigenvectors ``V`` (columns), paired with ``hessian_eigenvalues``.
    hessian_rest : float
        Eigenvalue of ``H`` on the orthogonal complement of ``V``:
        ``H = V diag(lambda) V^T + hessian_rest (I - V V^T)``.
    noise_factor : array_like, shape (dim, r), optional
        Low-rank factor ``F`` of ``S = F F^T + diag(d)``.
    noise_diagonal : array_like, shape (dim,), optional
        Non-negative diagonal ``d`` of ``S = F F^T + diag(d)``.
    metadata : dict, optional
        JSON-serialisable provenance (source model, data set, recipe); saved
        under ``"provenance"`` by :meth:`save`.

    Notes
    -----
    Naming: the matrices are the properties :attr:`H` and :attr:`S`
    (:attr:`noise_covariance` is an alias of :attr:`S`, as in the design
    document). The pointwise ``Loss`` interface is the methods
    :meth:`value`, :meth:`grad`, :meth:`hessian` and :meth:`noise_covariance_at`,
    all taking ``W`` of shape ``(..., dim)`` (and an unused time ``t``, for the
    signature of ``Loss``). :meth:`noise_sqrt` returns a
    factor ``G`` with ``G G^T = S``.

    Raises
    ------
    ShapeError
        Inconsistent shapes, or neither/both forms of the Hessian given.
    NonFiniteError
        Non-finite entries.
    ValueError
        ``H`` or ``S`` not symmetric, ``S`` not positive semi-definite, negative
        ``noise_diagonal``, or eigenvectors not orthonormal.
    """

    kind = "quadratic"
    per_sample_noise = True

    def __init__(self, hessian=None, noise_covariance=None, w_star=None, *,
                 hessian_eigenvalues=None, hessian_eigenvectors=None, hessian_rest=0.0,
                 noise_factor=None, noise_diagonal=None, metadata=None):
        self._init_hessian(hessian, hessian_eigenvalues, hessian_eigenvectors, hessian_rest)
        dim = self.dim
        self._init_noise(noise_covariance, noise_factor, noise_diagonal)
        if w_star is None:
            self._w_star = np.zeros(dim)
        else:
            self._w_star = _array("w_star", w_star, 1)
            if self._w_star.shape != (dim,):
                raise ShapeError(f"w_star must have shape ({dim},), got {self._w_star.shape}")
        self._w_star.setflags(write=False)
        self._metadata = dict(metadata or {})
        try:
            json.dumps(self._metadata)
        except TypeError as exc:
            raise ConfigError(f"metadata must be JSON-serialisable: {exc}") from None

    # -- construction ---------------------------------------------------------------

    def _init_hessian(self, hessian, eigvals, eigvecs, rest):
        if (hessian is None) == (eigvals is None):
            raise ShapeError("give exactly one of `hessian` or `hessian_eigenvalues` (with `hessian_eigenvectors`)")
        if hessian is not None:
            if eigvecs is not None:
                raise ShapeError("`hessian_eigenvectors` goes with `hessian_eigenvalues`, not a dense `hessian`")
            h = _array("hessian", hessian, 2)
            h = _symmetric("hessian", h, h.shape[0])
            lam, vec = np.linalg.eigh(h)
            self._dense_h = h
            self._lam, self._vec = lam[::-1].copy(), vec[:, ::-1].copy()
            self._rest = None
        else:
            if eigvecs is None:
                raise ShapeError("`hessian_eigenvalues` needs `hessian_eigenvectors` (dim, k)")
            lam = _array("hessian_eigenvalues", eigvals, 1)
            vec = _array("hessian_eigenvectors", eigvecs, 2)
            if vec.shape[1] != lam.shape[0] or vec.shape[1] > vec.shape[0]:
                raise ShapeError(f"hessian_eigenvectors must have shape (dim, {lam.shape[0]}) with "
                                 f"dim >= {lam.shape[0]}, got {vec.shape}")
            err = np.abs(vec.T @ vec - np.eye(vec.shape[1])).max(initial=0.0)
            if err > 1e-8:
                raise ConfigError(f"hessian_eigenvectors are not orthonormal (max |V^T V - I| = {err:.3g})")
            rest = float(rest)
            if not np.isfinite(rest):
                raise NonFiniteError("hessian_rest is not finite")
            order = np.argsort(-lam, kind="stable")
            self._dense_h = None
            self._lam, self._vec = lam[order], vec[:, order]
            self._rest = rest
        self._lam.setflags(write=False)
        self._vec.setflags(write=False)

    def _init_noise(self, cov, factor, diag):
        dim = self.dim
        self._dense_s = self._factor = self._diag = None
        if cov is not None:
            if factor is not None or diag is not None:
                raise ShapeError("give either a dense `noise_covariance` or `noise_factor`/`noise_diagonal`, not both")
            S = check_psd("noise_covariance", _array("noise_covariance", cov, 2), dim)
            self._dense_s = 0.5 * (S + S.T)
            return
        if factor is not None:
            f = _array("noise_factor", factor, 2)
            if f.shape[0] != dim:
                raise ShapeError(f"noise_factor must have shape ({dim}, r), got {f.shape}")
            self._factor = f
            f.setflags(write=False)
        if diag is not None:
            d = _array("noise_diagonal", diag, 1)
            if d.shape != (dim,):
                raise ShapeError(f"noise_diagonal must have shape ({dim},), got {d.shape}")
            if np.any(d < 0):
                raise ConfigError(f"noise_diagonal must be non-negative (min {d.min():.3g})")
            self._diag = d
            d.setflags(write=False)
        if factor is None and diag is None:
            self._dense_s = np.zeros((dim, dim))

    # -- properties -------------------------------------------------------------------

    @property
    def dim(self) -> int:
        """Number of parameters."""
        return self._vec.shape[0]

    @property
    def w_star(self) -> np.ndarray:
        """Centre ``w*``, shape (dim,)."""
        return self._w_star

    @property
    def metadata(self) -> dict:
        """Provenance dictionary (a copy)."""
        return dict(self._metadata)

    @property
    def hessian_eigenvalues(self) -> np.ndarray:
        """Eigenvalues of ``H`` in descending order: all ``dim`` for a dense Hessian, the stored ``k`` otherwise."""
        return self._lam

    @property
    def hessian_eigenvectors(self) -> np.ndarray:
        """Orthonormal eigenvectors as columns, shape (dim, k), paired with :attr:`hessian_eigenvalues`."""
        return self._vec

    @property
    def hessian_rest(self) -> float | None:
        """Eigenvalue on the complement of the stored eigenvectors (``None`` for a dense Hessian)."""
        return self._rest

    @property
    def H(self) -> np.ndarray:
        """Dense Hessian, shape (dim, dim) (assembled from the eigenpairs when stored low-rank)."""
        if self._dense_h is None:
            v = self._vec
            h = (v * (self._lam - self._rest)) @ v.T + self._rest * np.eye(self.dim)
            self._dense_h = 0.5 * (h + h.T)
            self._dense_h.setflags(write=False)
        return self._dense_h

    @property
    def S(self) -> np.ndarray:
        """Dense per-sample noise covariance ``Sigma_1``, shape (dim, dim)."""
        if self._dense_s is None:
            s = np.zeros((self.dim, self.dim))
            if self._factor is not None:
                s += self._factor @ self._factor.T
            if self._diag is not None:
                s[np.diag_indices(self.dim)] += self._diag
            self._dense_s = s
        self._dense_s.setflags(write=False)
        return self._dense_s

    noise_covariance = S

    @property
    def noise_factor(self) -> np.ndarray | None:
        """Stored low-rank factor ``F`` of ``S = F F^T + diag(d)`` (``None`` when ``S`` is dense)."""
        return self._factor

    @property
    def noise_diagonal(self) -> np.ndarray | None:
        """Stored diagonal ``d`` of ``S = F F^T + diag(d)`` (``None`` when ``S`` is dense)."""
        return self._diag

    @property
    def noise_trace(self) -> float:
        """``tr S``, computed without forming ``S``."""
        if self._factor is None and self._diag is None:
            return float(np.trace(self._dense_s))
        tr = 0.0
        if self._factor is not None:
            tr += float(np.sum(self._factor ** 2))
        if self._diag is not None:
            tr += float(np.sum(self._diag))
        return tr

    def noise_sqrt(self) -> np.ndarray:
        """A factor ``G`` of shape (dim, r) with ``G G^T = S``.

        Low-rank storage gives ``G = [F, diag(sqrt d)]`` (only the non-zero
        diagonal columns); dense storage gives ``G = U diag(sqrt(mu))`` from the
        eigendecomposition ``S = U diag(mu) U^T`` (:func:`sdesim.linalg.psd_eigen`),
        dropping the columns of the eigenvalues it zeroes. ``r = 0`` when ``S = 0``.
        """
        if self._factor is None and self._diag is None:
            mu, u = psd_eigen(self.S)
            keep = mu > 0
            return u[:, keep] * np.sqrt(mu[keep])
        cols = []
        if self._factor is not None:
            cols.append(self._factor)
        if self._diag is not None:
            nz = np.flatnonzero(self._diag)
            g = np.zeros((self.dim, nz.size))
            g[nz, np.arange(nz.size)] = np.sqrt(self._diag[nz])
            cols.append(g)
        return np.concatenate(cols, axis=1)

    # -- pointwise Loss interface -------------------------------------------------------

    def _check(self, W):
        W = np.asarray(W, dtype=float)
        if W.ndim == 0 or W.shape[-1] != self.dim:
            raise ShapeError(f"W must have shape (..., {self.dim}), got {W.shape}")
        return W

    def hessian_vector(self, V) -> np.ndarray:
        """``H v`` for ``V`` of shape (..., dim), matrix-free for the eigenpair form.

        ``H v = rest * v + V_k ((lambda - rest) * (V_k^T v))``.
        """
        V = self._check(V)
        if self._rest is None:
            return V @ self._dense_h
        coef = (V @ self._vec) * (self._lam - self._rest)
        return self._rest * V + coef @ self._vec.T

    def value(self, W, t: float = 0.0) -> np.ndarray:
        """Loss ``C(W) = 1/2 (W - w*)^T H (W - w*)``; ``W`` (..., dim) -> (...)."""
        dw = self._check(W) - self._w_star
        return 0.5 * np.einsum("...i,...i->...", dw, self.hessian_vector(dw))

    def grad(self, W, t: float = 0.0) -> np.ndarray:
        """Gradient ``H (W - w*)``; ``W`` (..., dim) -> (..., dim)."""
        return self.hessian_vector(self._check(W) - self._w_star)

    def hessian(self, W, t: float = 0.0) -> np.ndarray:
        """Hessian ``H`` broadcast to ``W``'s leading shape; (..., dim) -> (..., dim, dim) (read-only view)."""
        W = self._check(W)
        return np.broadcast_to(self.H, W.shape + (self.dim,))

    def noise_covariance_at(self, W, t: float = 0.0) -> np.ndarray:
        """Per-sample gradient covariance ``Sigma_1(W) = S``; (..., dim) -> (..., dim, dim) (read-only view)."""
        W = self._check(W)
        return np.broadcast_to(self.S, W.shape + (self.dim,))

    # -- theory -----------------------------------------------------------------------------

    def stationary_covariance(self, lr: float, batch_size: int = 1, kind: str = "discrete") -> np.ndarray:
        """Stationary covariance ``P`` of SGD (``kind="discrete"``) or of the SGD diffusion (``kind="sde"``).

        .. math::

            \\text{discrete: } P = A P A^\\top + \\frac{\\eta^2}{B} S, \\quad A = I - \\eta H;
            \\qquad \\text{sde: } H P + P H = \\frac{\\eta}{B} S.

        In 1D these are ``lr s / (B h (2 - lr h))`` and ``lr s / (2 B h)``; ``kind="modified"``
        is the modified-drift SDE (:func:`sdesim.linalg.lyapunov_covariance`, which solves all three).

        Parameters
        ----------
        lr : float
            Learning rate ``eta > 0``.
        batch_size : int
            Minibatch size ``B`` (sampling with replacement, ``Cov[g_B] = S / B``).
        kind : {"discrete", "sde", "modified"}

        Returns
        -------
        ndarray, shape (dim, dim)

        Raises
        ------
        ValueError
            ``H`` has an eigenvalue ``<= 0`` (no stationary state), or
            ``lr * h_max >= 2`` for ``kind="discrete"`` (SGD is unstable).
        """
        return lyapunov_covariance(self.H, self.S, lr, batch_size, kind)

    # -- files ----------------------------------------------------------------------------------

    def _file_metadata(self) -> dict:
        top = self._lam[: min(10, self._lam.size)]
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "dim": self.dim,
            "hessian_storage": "dense" if self._rest is None else "eigenpairs",
            "noise_storage": "dense" if (self._factor is None and self._diag is None) else "lowrank",
            "provenance": self._metadata,
            "summary": {
                "top_hessian_eigenvalues": [float(v) for v in top],
                "hessian_rest": self._rest,
                "noise_trace": self.noise_trace,
            },
        }

    def save(self, path) -> Path:
        """Write the model to ``path`` (``.npz``) and a readable ``.json`` with the same stem.

        The ``.npz`` holds the stored arrays plus ``metadata``, a JSON string with
        ``format`` (``"sdesim.QuadraticModel"``), ``format_version``, ``dim``,
        ``hessian_storage`` (``"dense"`` | ``"eigenpairs"``), ``noise_storage``
        (``"dense"`` | ``"lowrank"``), ``provenance`` and a ``summary`` (top Hessian
        eigenvalues, ``tr S``); the ``.json`` file repeats that metadata.

        Returns
        -------
        pathlib.Path
            Path of the ``.npz`` file written.
        """
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        meta = self._file_metadata()
        arrays = {"w_star": self._w_star}
        if self._rest is None:
            arrays["hessian"] = self._dense_h
        else:
            arrays.update(hessian_eigenvalues=self._lam, hessian_eigenvectors=self._vec,
                          hessian_rest=np.float64(self._rest))
        if meta["noise_storage"] == "dense":
            arrays["noise_covariance"] = self.S
        else:
            if self._factor is not None:
                arrays["noise_factor"] = self._factor
            if self._diag is not None:
                arrays["noise_diagonal"] = self._diag
        text = json.dumps(meta, indent=2)
        np.savez(path, metadata=np.array(text), **arrays)
        path.with_suffix(".json").write_text(text + "\n")
        return path

    @classmethod
    def load(cls, path) -> "QuadraticModel":
        """Read a model written by :meth:`save`.

        Raises
        ------
        FormatError
            The file is corrupted, truncated, not an ``sdesim.QuadraticModel`` of
            ``format_version`` 1, or its arrays do not form a valid model (names the path).
        MissingFileError
            There is no file at ``path``.
        """
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        data = load_npz(path)
        meta = data.check_format(FORMAT, FORMAT_VERSION)
        kwargs = {"w_star": data["w_star"], "metadata": meta.get("provenance", {})}
        if meta.get("hessian_storage") == "dense":
            kwargs["hessian"] = data["hessian"]
        else:
            kwargs.update(hessian_eigenvalues=data["hessian_eigenvalues"],
                          hessian_eigenvectors=data["hessian_eigenvectors"], hessian_rest=data["hessian_rest"])
        if meta.get("noise_storage") == "dense":
            kwargs["noise_covariance"] = data["noise_covariance"]
        else:
            kwargs.update(noise_factor=data.get("noise_factor"), noise_diagonal=data.get("noise_diagonal"))
        try:
            if "hessian_rest" in kwargs:
                kwargs["hessian_rest"] = float(kwargs["hessian_rest"])
            return cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise FormatError(f"{path}: the stored arrays are not a valid quadratic model: {exc}") from None

    def __repr__(self) -> str:
        form = "dense" if self._rest is None else f"top-{self._lam.size} eigenpairs"
        return (f"QuadraticModel(dim={self.dim}, H: {form}, h_max={self._lam[0] if self._lam.size else self._rest:.4g}, "
                f"tr S={self.noise_trace:.4g})")
