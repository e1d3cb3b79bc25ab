r"""Probability current and circulation: how far an ensemble is from equilibrium.

With isotropic noise the SGD diffusion is reversible (Gibbs, no current). When the
noise covariance :math:`S` does not commute with :math:`H` the stationary state of the
quadratic model carries the current (Chaudhari & Soatto 2018)

.. math::

    J(w) = \big(-H + D P^{-1}\big)(w - w^*)\,\rho(w), \qquad D = \frac{\eta}{2B} S,

with :math:`P` the continuous-Lyapunov covariance, and the ensemble rotates: the mean
angular velocity in the plane of coordinates :math:`(i, j)` is

.. math::

    \Omega_{ij} = \frac{E[x_i\,dx_j - x_j\,dx_i]}{dt} = (H P - P H)_{ij},
    \qquad x = w - w^*,

which for diagonal :math:`H` is :math:`(h_i - h_j) P_{ij}` (Ito: the noise term has mean zero).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sdesim.errors import ConfigError, ShapeError
from sdesim.linalg import lyapunov_covariance

__all__ = ["Circulation", "angular_velocity", "angular_velocity_density", "angular_velocity_theory",
           "stationary_current"]


@dataclass(frozen=True)
class Circulation:
    """Mean angular velocity ``mean`` with standard error ``se`` over ``n`` independent particles."""

    mean: float
    se: float
    n: int


def angular_velocity(result, dims=(0, 1), center=None, burn_in=0.0) -> Circulation:
    r"""Estimate :math:`\Omega_{ij} = E[x_i\,dx_j - x_j\,dx_i] / dt` from consecutive records.

    Each surviving particle's increments over records at :math:`t \ge t_{\rm start}` give the
    time average of :math:`(x_i \Delta x_j - x_j \Delta x_i) / \Delta t`; the estimate is the
    mean over particles, its standard error their standard deviation over :math:`\sqrt N`.
    Record every step (``record_every=1``): over a record interval :math:`\Delta` the
    estimator measures :math:`(e^{-h_j \Delta} - e^{-h_i \Delta}) P_{ij} / \Delta`, which tends to
    :math:`\Omega_{ij}` as :math:`\Delta \to 0`. The noise term's variance per unit time makes
    the standard error scale as :math:`1 / \sqrt{N\, t}`, whatever the step.

    Parameters
    ----------
    result : Result
    dims : (int, int)
        The plane ``(i, j)``; positive is the rotation from axis ``i`` towards ``j``.
    center : array_like, shape (dim,), optional
        :math:`w^*`; default the mean over particles and late records.
    burn_in : float
        Fraction of the time span discarded.
    """
    i, j = (int(d) for d in dims)
    if not (0 <= i < result.dim and 0 <= j < result.dim and i != j):
        raise ShapeError(f"dims must be two different axes in [0, {result.dim}), got {dims}")
    if not 0 <= burn_in < 1:
        raise ConfigError(f"burn_in must be a fraction in [0, 1), got {burn_in}")
    t = np.asarray(result.t)
    late = t >= t[0] + burn_in * (t[-1] - t[0])
    w = np.asarray(result.w)[late][:, ~result.diverged]
    t = t[late]
    if w.shape[0] < 2 or w.shape[1] < 2:
        raise ConfigError(f"need >= 2 late records and >= 2 surviving particles, got {w.shape[:2]}")
    c = w.mean(axis=(0, 1)) if center is None else np.asarray(center, dtype=float)
    if c.shape != (result.dim,):
        raise ShapeError(f"center must have shape ({result.dim},), got {c.shape}")
    x = w[:-1] - c
    dx = np.diff(w, axis=0)
    dt = np.diff(t)[:, None]
    per_particle = ((x[..., i] * dx[..., j] - x[..., j] * dx[..., i]) / dt).mean(axis=0)
    n = per_particle.size
    return Circulation(float(per_particle.mean()), float(per_particle.std(ddof=1) / np.sqrt(n)), n)


def angular_velocity_density(grid, current, dims=(0, 1), center=None) -> float:
    r"""Angular velocity of a density from its probability current: :math:`\Omega_{ij} = \int (x_i J_j - x_j J_i)\,dw`.

    Equal to :math:`E[x_i\,dx_j - x_j\,dx_i]/dt` because the diffusive part of
    :math:`\int x_i J_j` is :math:`E[D_{ij}]`, symmetric in :math:`(i, j)`.

    Parameters
    ----------
    grid : Grid
    current : array, shape (*grid.shape, dim)
        ``FokkerPlanck.current(rho)``.
    dims : (int, int)
    center : array_like, shape (dim,), optional
        Origin of :math:`x = w - \text{center}` (default zero).
    """
    J = np.asarray(current, dtype=float)
    if J.shape != tuple(grid.shape) + (grid.dim,):
        raise ShapeError(f"current must have shape {tuple(grid.shape) + (grid.dim,)}, got {J.shape}")
    i, j = dims
    x = grid.centers - (0.0 if center is None else np.asarray(center, dtype=float))
    return float(np.sum(x[..., i] * J[..., j] - x[..., j] * J[..., i]) * grid.cell_volume)


def angular_velocity_theory(H, P, dims=(0, 1)) -> float:
    r""":math:`\Omega_{ij} = (H P - P H)_{ij}` for the linear drift :math:`-H (w - w^*)` and stationary covariance ``P``."""
    H, P = np.asarray(H, dtype=float), np.asarray(P, dtype=float)
    if H.ndim != 2 or H.shape != P.shape or H.shape[0] != H.shape[1]:
        raise ShapeError(f"H and P must be square matrices of one shape, got {H.shape}, {P.shape}")
    i, j = dims
    return float((H @ P - P @ H)[i, j])


def stationary_current(H, S, lr, batch_size, W, w_star=None) -> np.ndarray:
    r"""Stationary probability current :math:`J(w) = (-H + D P^{-1})(w - w^*)\,\rho(w)` of the quadratic model's SDE.

    ``W (..., dim) -> (..., dim)``; :math:`\rho` the Gaussian :math:`N(w^*, P)`,
    :math:`P` from :math:`HP + PH = (\eta/B) S`, :math:`D = \eta S / 2B`. :math:`J = 0` iff :math:`HS = SH`.
    """
    H = np.atleast_2d(np.asarray(H, dtype=float))
    P = lyapunov_covariance(H, S, lr, batch_size, kind="sde")
    D = 0.5 * float(lr) / int(batch_size) * np.atleast_2d(np.asarray(S, dtype=float))
    W = np.asarray(W, dtype=float)
    if W.ndim == 0 or W.shape[-1] != H.shape[0]:
        raise ShapeError(f"W must have shape (..., {H.shape[0]}), got {W.shape}")
    x = W - (0.0 if w_star is None else np.asarray(w_star, dtype=float))
    Pinv = np.linalg.inv(P)
    dim = H.shape[0]
    rho = np.exp(-0.5 * np.einsum("...i,ij,...j->...", x, Pinv, x)) / np.sqrt((2 * np.pi) ** dim * np.linalg.det(P))
    return (x @ (-H + D @ Pinv).T) * rho[..., None]
