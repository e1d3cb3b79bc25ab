"""Basins of attraction of a set of minima: which minimum each point belongs to."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sdesim.errors import ConfigError, ShapeError

__all__ = ["Basins"]


@dataclass(frozen=True, eq=False)
class Basins:
    """Basins of attraction of a set of minima: ``basins(W)`` labels points ``(..., dim) -> (...)`` int.

    Parameters
    ----------
    centers : array_like, shape (K, dim)
        The minima; label ``i`` is the basin of ``centers[i]``.
    loss : Loss, optional
        Needed for ``method="gradient"``.
    method : {"nearest", "gradient"}
        ``"nearest"``: the nearest centre (Voronoi cells; exact only for symmetric
        wells). ``"gradient"``: the minimum gradient descent converges to from the
        point (the true basin of attraction), steps ``-lr grad C`` capped at ``max_move``,
        until within ``tol`` of a centre.
    lr : float, optional
        GD step; default ``1 / max`` sharpness at the centres.
    tol, max_steps, max_move : float, int, float
        Convergence radius, step budget, and largest move per step (default a tenth
        of the smallest distance between centres).

    Points that are not finite, or (``"gradient"``) do not converge within
    ``max_steps`` (e.g. on a saddle's stable manifold), get label ``-1``.
    """

    centers: np.ndarray
    loss: object = None
    method: str = "nearest"
    lr: float | None = None
    tol: float = 1e-2
    max_steps: int = 10_000
    max_move: float | None = None

    def __post_init__(self):
        c = np.atleast_2d(np.asarray(self.centers, dtype=float))
        if c.ndim != 2 or len(c) < 1:
            raise ShapeError(f"centers must have shape (K, dim), got {np.shape(self.centers)}")
        object.__setattr__(self, "centers", c)
        if self.method not in ("nearest", "gradient"):
            raise ConfigError(f"method must be 'nearest' or 'gradient', got {self.method!r}")
        if self.method == "gradient":
            if self.loss is None:
                raise ConfigError("method='gradient' needs the loss")
            if self.loss.dim != c.shape[1]:
                raise ShapeError(f"centers have dim {c.shape[1]}, the loss {self.loss.dim}")
            if self.lr is None:
                from sdesim.analysis.sharpness import sharpness
                object.__setattr__(self, "lr", 1.0 / float(np.max(sharpness(self.loss, c))))
            if self.max_move is None:
                gaps = np.linalg.norm(c[:, None] - c[None], axis=-1)[~np.eye(len(c), dtype=bool)]
                object.__setattr__(self, "max_move", 0.1 * float(gaps.min()) if gaps.size else 0.1)

    @classmethod
    def from_landscape(cls, landscape, method="nearest", **kwargs) -> Basins:
        """Basins of a catalog ``Landscape``'s minima (in its stored order)."""
        return cls(np.array([m.location for m in landscape.minima]), loss=landscape.loss, method=method, **kwargs)

    @property
    def dim(self) -> int:
        return self.centers.shape[1]

    def _nearest(self, X):
        d = np.linalg.norm(X[:, None, :] - self.centers[None], axis=-1)
        return d.argmin(axis=1), d.min(axis=1)

    def __call__(self, W) -> np.ndarray:
        W = np.asarray(W, dtype=float)
        if W.ndim == 0 or W.shape[-1] != self.dim:
            raise ShapeError(f"points must have shape (..., {self.dim}), got {W.shape}")
        X = W.reshape(-1, self.dim)
        labels = np.full(len(X), -1)
        ok = np.flatnonzero(np.isfinite(X).all(axis=1))
        if self.method == "nearest":
            labels[ok] = self._nearest(X[ok])[0]
            return labels.reshape(W.shape[:-1])
        X = X[ok].copy()
        for _ in range(self.max_steps):
            near, dist = self._nearest(X)
            done = dist < self.tol
            labels[ok[done]] = near[done]
            ok, X = ok[~done], X[~done]
            if not len(X):
                break
            step = self.lr * self.loss.grad(X)
            norm = np.linalg.norm(step, axis=1, keepdims=True)
            X -= step * np.minimum(1.0, self.max_move / np.maximum(norm, 1e-300))
        return labels.reshape(W.shape[:-1])
