r"""Loss along paths: straight-line interpolation, model averaging, and minimum-energy paths.

- Linear interpolation :math:`C((1 - \alpha) a + \alpha b)`; its barrier
  :math:`\max_\alpha C - \max(C(a), C(b))` tells whether two solutions share a basin
  (Goodfellow et al. 2015; linear mode connectivity, Frankle et al. 2020).
- Model averaging: :math:`C(\bar w)` against :math:`\overline{C(w)}` for points or
  ensembles (stochastic weight averaging, Izmailov et al. 2018): within a convex basin
  :math:`C(\bar w) \le \overline{C(w)}` (Jensen).
- Minimum-energy paths by the climbing-image nudged elastic band (Henkelman, Uberuaga &
  Jonsson 2000): images :math:`R_i` feel the perpendicular true force
  :math:`-\nabla C|_\perp` and a spring force along the improved tangent
  :math:`\hat\tau_i`; the highest image climbs, :math:`F = -\nabla C + 2 (\nabla C\cdot\hat\tau)\hat\tau`,
  and converges onto the saddle. Relaxed by FIRE (Bitzek et al. 2006).

Every function takes a vectorised loss (``dim``, ``value(W)``, ``grad(W)`` on ``(..., dim)``) or a
network :class:`~sdesim.nets.objective.Objective` (``n_params``, ``loss(w)``, ``grad(w)``: one
point at a time, in ``P`` dimensions), e.g. for the path between two trained nets
(:mod:`sdesim.nets.connectivity`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sdesim.errors import ConfigError, ShapeError
from sdesim.losses.catalog import CriticalPoint

__all__ = [
    "Averaging",
    "MinimumEnergyPath",
    "average",
    "interpolate",
    "interpolation_barrier",
    "nudged_elastic_band",
]


class _ObjectiveAsLoss:
    """A network objective (full-batch ``loss(w)``, ``grad(w)``) as a loss vectorised over rows."""

    def __init__(self, objective):
        self.objective, self.dim = objective, int(objective.n_params)

    def value(self, W):
        W = np.asarray(W, dtype=float)
        return np.array([self.objective.loss(w) for w in W.reshape(-1, self.dim)]).reshape(W.shape[:-1])

    def grad(self, W):
        W = np.asarray(W, dtype=float)
        return np.array([self.objective.grad(w) for w in W.reshape(-1, self.dim)]).reshape(W.shape)


def _vectorised(loss):
    """``loss`` itself, or a network objective (it has ``n_params`` and no ``dim``) wrapped row by row."""
    return _ObjectiveAsLoss(loss) if hasattr(loss, "n_params") and not hasattr(loss, "dim") else loss


def _point(name, a, dim):
    a = np.asarray(a.location if isinstance(a, CriticalPoint) else a, dtype=float)
    if a.shape[-1:] != (dim,):
        raise ShapeError(f"{name} must have trailing dimension {dim}, got shape {a.shape}")
    return a


def interpolate(loss, a, b, n=101, extend=0.0):
    r"""Loss along the straight line :math:`w(\alpha) = (1 - \alpha) a + \alpha b`.

    Parameters
    ----------
    loss : Loss, FiniteSumLoss, QuadraticModel or network Objective
    a, b : array_like, shape (..., dim)
        End points (broadcast: pairs of ensembles give one curve per pair).
    n : int
        Number of values of :math:`\alpha`, evenly spaced on ``[-extend, 1 + extend]``.

    Returns
    -------
    alpha : (n,) array
    values : (n, ...) array
        :math:`C(w(\alpha))`.
    """
    loss = _vectorised(loss)
    a, b = _point("a", a, loss.dim), _point("b", b, loss.dim)
    alpha = np.linspace(-extend, 1.0 + extend, int(n))
    shape = (n,) + (1,) * (np.broadcast(a, b).ndim)
    W = (1 - alpha.reshape(shape)) * a + alpha.reshape(shape) * b
    return alpha, np.asarray(loss.value(W))


def interpolation_barrier(loss, a, b, n=101) -> np.ndarray:
    r"""Barrier along the line: :math:`\max_{\alpha \in [0,1]} C(w(\alpha)) - \max(C(a), C(b))` (``>= 0``)."""
    _, v = interpolate(loss, a, b, n)
    return v.max(axis=0) - np.maximum(v[0], v[-1])


@dataclass(frozen=True)
class Averaging:
    """``loss_of_mean``: :math:`C(\\bar w)`; ``mean_loss``: :math:`\\overline{C(w)}`; ``mean``: :math:`\\bar w`."""

    mean: np.ndarray
    loss_of_mean: float
    mean_loss: float

    @property
    def gain(self) -> float:
        """``mean_loss - loss_of_mean``: positive when averaging helps."""
        return self.mean_loss - self.loss_of_mean


def average(loss, W) -> Averaging:
    """Loss of the average of points ``W (N, dim)`` (two models, or an ensemble's final states).

    Non-finite rows (diverged particles) are dropped.
    """
    loss = _vectorised(loss)
    W = _point("W", W, loss.dim)
    if W.ndim != 2:
        raise ShapeError(f"W must have shape (N, {loss.dim}), got {W.shape}")
    W = W[np.isfinite(W).all(axis=1)]
    if not len(W):
        raise ConfigError("no finite point to average")
    m = W.mean(axis=0)
    return Averaging(m, float(loss.value(m)), float(np.mean(loss.value(W))))


@dataclass(frozen=True)
class MinimumEnergyPath:
    """A relaxed elastic band.

    Attributes
    ----------
    images : (n, dim) array
        Path from ``a`` to ``b``.
    values : (n,) array
        Loss at the images.
    saddle, saddle_value : (dim,) array, float
        The highest interior image (the climbing image: the saddle when converged).
    converged : bool
        Largest force on a moving image below ``tol``.
    iterations : int
    max_force : float
    """

    images: np.ndarray
    values: np.ndarray
    saddle: np.ndarray
    saddle_value: float
    converged: bool
    iterations: int
    max_force: float

    @property
    def barrier(self) -> float:
        """``saddle_value - values[0]``: the barrier seen from ``a``."""
        return self.saddle_value - float(self.values[0])

    def local_maxima(self) -> np.ndarray:
        """Indices of interior images higher than both neighbours (one per saddle crossed)."""
        v = self.values
        return np.flatnonzero((v[1:-1] > v[:-2]) & (v[1:-1] > v[2:])) + 1


def _tangents(R, V):
    """Improved tangents (Henkelman & Jonsson 2000) at the interior images, unit length."""
    fwd, bwd = R[2:] - R[1:-1], R[1:-1] - R[:-2]
    vp, v0, vm = V[2:], V[1:-1], V[:-2]
    dmax = np.maximum(np.abs(vp - v0), np.abs(vm - v0))[:, None]
    dmin = np.minimum(np.abs(vp - v0), np.abs(vm - v0))[:, None]
    up, down = ((vp > v0) & (v0 > vm))[:, None], ((vp < v0) & (v0 < vm))[:, None]
    mixed = np.where((vp > vm)[:, None], fwd * dmax + bwd * dmin, fwd * dmin + bwd * dmax)
    tau = np.where(up, fwd, np.where(down, bwd, mixed))
    return tau / np.maximum(np.linalg.norm(tau, axis=1, keepdims=True), 1e-300)


def nudged_elastic_band(loss, a, b, n_images=21, climbing=True, spring=None, tol=1e-4,
                        max_steps=20_000, max_move=None, initial=None) -> MinimumEnergyPath:
    r"""Minimum-energy path from ``a`` to ``b`` by the (climbing-image) nudged elastic band.

    Parameters
    ----------
    loss : Loss or Objective
        With vectorised ``value`` and ``grad``, or a network objective (``P`` dimensions; each
        step costs ``n_images`` full-batch losses and gradients).
    a, b : array_like, shape (dim,), or catalog ``CriticalPoint``
        Fixed end points (usually minima).
    n_images : int
        Images including the end points, ``>= 3``.
    climbing : bool
        Let the highest interior image climb to the saddle (after the band has
        relaxed to ``100 tol`` without it).
    spring : float, optional
        Spring constant; default :math:`\max_i |\nabla C(R_i)|` over the initial band
        divided by its length, so spring and true forces are comparable.
    tol : float
        Convergence: the largest NEB force on a moving image.
    max_steps : int
    max_move : float, optional
        Largest displacement of an image per step (default: a tenth of the initial
        image spacing).
    initial : array_like, shape (n_images, dim), optional
        Initial band (default the straight line).

    Returns
    -------
    MinimumEnergyPath
        ``converged=False`` (no exception) when ``max_steps`` is reached.
    """
    loss = _vectorised(loss)
    dim = loss.dim
    a, b = _point("a", a, dim).reshape(dim), _point("b", b, dim).reshape(dim)
    n = int(n_images)
    if n < 3:
        raise ConfigError(f"n_images must be >= 3, got {n_images}")
    if initial is None:
        R = a + np.linspace(0, 1, n)[:, None] * (b - a)
    else:
        R = np.array(initial, dtype=float)
        if R.shape != (n, dim):
            raise ShapeError(f"initial must have shape ({n}, {dim}), got {R.shape}")
        R[0], R[-1] = a, b
    length = np.linalg.norm(np.diff(R, axis=0), axis=1).sum()
    if length == 0:
        raise ConfigError("a and b coincide")
    if spring is None:
        spring = float(np.linalg.norm(loss.grad(R), axis=1).max()) / length
    if max_move is None:
        max_move = 0.1 * length / (n - 1)

    def forces(R, climb):
        V, G = np.asarray(loss.value(R)), np.asarray(loss.grad(R))
        tau = _tangents(R, V)
        g = G[1:-1]
        gpar = np.sum(g * tau, axis=1, keepdims=True)
        seg = np.linalg.norm(np.diff(R, axis=0), axis=1)
        F = -(g - gpar * tau) + spring * (seg[1:] - seg[:-1])[:, None] * tau
        top = int(np.argmax(V[1:-1]))
        if climb:
            F[top] = -g[top] + 2 * gpar[top] * tau[top]
        return F, V, top

    # FIRE (Bitzek et al. 2006) on the interior images
    v = np.zeros((n - 2, dim))
    dt, dt_max, alpha, since = 0.1, 1.0, 0.1, 0
    climb, step, fmax = False, 0, np.inf
    scale = max_move / max(float(np.linalg.norm(loss.grad(R), axis=1).max()), 1e-300)
    for step in range(1, int(max_steps) + 1):
        F, V, top = forces(R, climb)
        fmax = float(np.linalg.norm(F, axis=1).max())
        if fmax < (tol if (climb or not climbing) else 100 * tol):
            if climb or not climbing:
                break
            climb = True
            continue
        F = F * scale                                    # forces in units of displacement
        power = np.sum(F * v)
        fn, vn = np.linalg.norm(F), np.linalg.norm(v)
        if power > 0:
            v = (1 - alpha) * v + alpha * vn * F / max(fn, 1e-300)
            since += 1
            if since > 5:
                dt, alpha = min(1.1 * dt, dt_max), 0.99 * alpha
        else:
            v[:] = 0.0
            dt, alpha, since = 0.5 * dt, 0.1, 0
        v += dt * F
        move = dt * v
        norm = np.linalg.norm(move, axis=1, keepdims=True)
        R[1:-1] += move * np.minimum(1.0, max_move / np.maximum(norm, 1e-300))
    V = np.asarray(loss.value(R))
    top = int(np.argmax(V[1:-1])) + 1
    return MinimumEnergyPath(R, V, R[top].copy(), float(V[top]), bool(fmax < tol and (climb or not climbing)),
                             step, fmax)
