"""Two-dimensional views of losses of any dimension: two chosen variables, or the plane of the
top two Hessian eigenvectors at a minimum."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sdesim.errors import ShapeError


@dataclass(frozen=True)
class Plane:
    """The plane :math:`w = origin + a\\, u_1 + b\\, u_2` of a ``dim``-dimensional space.

    ``basis`` holds the orthonormal rows ``(u_1, u_2)``, ``names`` the axis labels;
    :meth:`coords` maps states to ``(a, b)`` (the orthogonal projection), :meth:`lift`
    maps plane coordinates back to states.
    """

    origin: np.ndarray
    basis: np.ndarray
    names: tuple

    def coords(self, W) -> np.ndarray:
        """Plane coordinates ``(..., 2)`` of states ``W (..., dim)``."""
        W = np.asarray(W, dtype=float)
        if W.shape[-1] != self.origin.size:
            raise ShapeError(f"W must have trailing dimension {self.origin.size} (the plane's space), "
                             f"got shape {W.shape}")
        return (W - self.origin) @ self.basis.T

    def lift(self, A, B) -> np.ndarray:
        """States ``(..., dim)`` at plane coordinates ``A``, ``B`` (arrays of one shape)."""
        return self.origin + np.asarray(A)[..., None] * self.basis[0] + np.asarray(B)[..., None] * self.basis[1]


def _index(names, v):
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool) and -len(names) <= v < len(names):
        return int(v) % len(names)
    if v in names:
        return names.index(v)
    raise ShapeError(f"unknown variable {v!r}: the loss has {list(names)} (or indices 0..{len(names) - 1})")


def variables(loss, pair, at=None) -> Plane:
    """The plane of two variables (names or indices), through ``at`` in the others (default 0).

    Its coordinates are the two variables' values.
    """
    from sdesim.losses.base import as_loss
    loss = as_loss(loss)
    names = list(loss.names)
    if len(pair) != 2:
        raise ShapeError(f"choose two variables, got {list(pair)}")
    i, j = (_index(names, v) for v in pair)
    if i == j:
        raise ShapeError(f"choose two different variables, got {list(pair)}")
    origin = np.zeros(loss.dim) if at is None else np.array(at, dtype=float).reshape(-1)
    if origin.size != loss.dim:
        raise ShapeError(f"at must have {loss.dim} values (one per variable), got {origin.size}")
    origin[[i, j]] = 0.0
    basis = np.eye(loss.dim)[[i, j]]
    return Plane(origin, basis, (names[i], names[j]))


def hessian_plane(loss, minimum) -> Plane:
    """The plane through ``minimum`` spanned by the top two Hessian eigenvectors there.

    ``minimum``: a point or a catalog critical point. The coordinates are the
    displacements from it along the sharpest and second-sharpest directions; the
    axis names give their curvatures.
    """
    from sdesim.linalg import lanczos
    from sdesim.losses.base import as_loss
    loss = as_loss(loss)
    w = np.asarray(getattr(minimum, "location", minimum), dtype=float).reshape(-1)
    if w.size != loss.dim or not np.isfinite(w).all():
        raise ShapeError(f"minimum must be a finite point with {loss.dim} coordinates, got {w.tolist()}")
    if loss.dim < 2:
        raise ShapeError(f"a plane needs a loss of at least 2 variables, this one has {loss.dim}")
    if loss.kind == "quadratic":
        vals, vecs = lanczos(loss.hessian_vector, loss.dim, k=2)
    else:
        H = np.asarray(loss.hessian(w[None]))[0]
        vals, vecs = lanczos(lambda v: H @ v, loss.dim, k=2)
    names = tuple(f"u{k + 1} (Hessian eigenvector, h = {vals[k]:.3g})" for k in range(2))
    return Plane(w, vecs.T.copy(), names)


def resolve(loss, plane, results=()) -> Plane:
    """The plane a figure of ``loss`` is drawn in.

    ``plane``: a :class:`Plane`; two variable names or indices (the plane through
    the first result's final mean); ``"hessian"`` (:func:`hessian_plane` at the first
    result's final mean, e.g. where GD converged); or ``None`` for the two variables of
    a 2D loss.
    """
    from sdesim.losses.base import as_loss
    loss = as_loss(loss)
    if isinstance(plane, Plane):
        if plane.origin.size != loss.dim:
            raise ShapeError(f"the plane lives in {plane.origin.size} dimensions, the loss has {loss.dim}")
        return plane
    if plane is None:
        if loss.dim != 2:
            raise ShapeError(f"the loss has {loss.dim} variables {list(loss.names)}: choose two with "
                             "plane=('x', 'y'), or plane='hessian' (or sd.plot.hessian_plane(loss, minimum)) "
                             "for the top Hessian eigenvectors at a minimum")
        return variables(loss, (0, 1))
    at = _end_point(results)
    if isinstance(plane, str):
        if plane != "hessian":
            raise ShapeError(f"plane must be 'hessian', two variables, a Plane or None, got {plane!r}")
        if at is None:
            raise ShapeError("plane='hessian' needs results (their first final mean is the minimum)")
        return hessian_plane(loss, at)
    return variables(loss, tuple(plane), at)


def _end_point(results):
    """The final mean of the first result over its surviving particles, or ``None``."""
    if not results:
        return None
    res = results[0]
    final = res.final[~res.diverged]
    return final.mean(axis=0) if len(final) else None
