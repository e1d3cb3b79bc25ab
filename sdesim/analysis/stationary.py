r"""Stationary statistics of ensembles and the Lyapunov predictions for quadratic models.

For :math:`C = \frac12 (w - w^*)^\top H (w - w^*)` with constant noise covariance :math:`S`:

.. math::

    \text{SGD (discrete):}\quad & P = A P A^\top + \frac{\eta^2}{B} S, \qquad A = I - \eta H, \\
    \text{SDE (continuous):}\quad & H P + P H^\top = \frac{\eta}{B} S, \\
    \text{modified SDE:}\quad & \tilde H P + P \tilde H = \frac{\eta}{B} S, \qquad \tilde H = H + \frac{\eta}{2} H^2,

the last being the SDE with the modified drift :math:`-\nabla(C + \frac{\eta}{4}|\nabla C|^2)`
(Li, Tai & E's second-order SME). In 1D: :math:`\eta s / (B h (2 - \eta h))`,
:math:`\eta s / (2 B h)` and :math:`\eta s / (2 B h (1 + \eta h / 2))`; the
discrete/SDE ratio is :math:`2 / (2 - \eta h)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sdesim import linalg
from sdesim.errors import ConfigError, LossKindError
from sdesim.losses.base import as_loss

__all__ = [
    "StationaryStats",
    "lyapunov_covariance",
    "stationary_statistics",
    "stationary_variance_1d",
    "variance_ratio_discrete_sde",
]


@dataclass(frozen=True)
class StationaryStats:
    """Mean and covariance over late times and particles, with standard errors.

    Attributes
    ----------
    mean, mean_se : (dim,) arrays
    covariance, covariance_se : (dim, dim) arrays
    n_groups : int
        Number of independent groups (particles x time batches) behind the standard errors.
    t_start : float
        First time included.
    """

    mean: np.ndarray
    mean_se: np.ndarray
    covariance: np.ndarray
    covariance_se: np.ndarray
    n_groups: int
    t_start: float


def stationary_statistics(result, burn_in=0.5, batches=1) -> StationaryStats:
    r"""Stationary mean and covariance of a ``Result`` from its records at ``t >= t_start``.

    Each surviving particle's late records are cut into ``batches`` consecutive time
    blocks; every (particle, block) group gives a mean :math:`\bar w_g` and a second
    moment :math:`\overline{(w - \mu)(w - \mu)^\top}_g` about the pooled mean
    :math:`\mu`. The estimates are the averages over the ``G`` groups and their standard
    errors :math:`\mathrm{sd}_g / \sqrt{G}` (batch means: the groups are independent
    when particles are, and when blocks are much longer than the correlation time).

    Parameters
    ----------
    result : Result
        ``w (T, N, dim)``.
    burn_in : float
        Fraction of the time span discarded: ``t_start = t0 + burn_in (t_end - t0)``.
    batches : int
        Time blocks per particle (use ``>= 10`` for a single long trajectory).

    Raises
    ------
    ValueError
        Fewer than two groups or no record after the burn-in.
    """
    if not 0 <= burn_in < 1:
        raise ConfigError(f"burn_in must be a fraction in [0, 1), got {burn_in}")
    t = np.asarray(result.t)
    t_start = t[0] + burn_in * (t[-1] - t[0])
    w = np.asarray(result.w)[t >= t_start][:, ~result.diverged]
    batches = int(batches)
    if batches < 1 or w.shape[0] < batches:
        raise ConfigError(f"need 1 <= batches <= {w.shape[0]} late records, got batches = {batches}")
    n_rec = (w.shape[0] // batches) * batches
    w = w[-n_rec:].reshape(batches, n_rec // batches, *w.shape[1:])          # (b, r, N, dim)
    groups = batches * w.shape[2]
    if groups < 2:
        raise ConfigError("need at least two groups (particles x batches) for a standard error")
    mu = w.mean(axis=(0, 1, 2))
    d = w - mu
    means = w.mean(axis=1).reshape(groups, -1)
    seconds = np.einsum("brni,brnj->bnij", d, d).reshape(groups, *mu.shape * 2) / w.shape[1]
    se = lambda x: x.std(axis=0, ddof=1) / np.sqrt(groups)
    cov = seconds.mean(axis=0)
    return StationaryStats(mean=mu, mean_se=se(means), covariance=0.5 * (cov + cov.T),
                           covariance_se=se(seconds), n_groups=groups, t_start=float(t_start))


def density_statistics(grid, rho):
    r"""Mean and covariance of a density on a Fokker-Planck ``Grid`` (e.g. ``FokkerPlanck.steady_state()``).

    Cell averages: each cell's mass is spread uniformly over the cell, which adds
    :math:`h_i^2 / 12` to each variance (exact for a piecewise-constant density).

    Returns
    -------
    mean : (dim,) array
    covariance : (dim, dim) array
    """
    rho = grid.normalize(rho)
    X, r = grid.centers.reshape(-1, grid.dim), rho.ravel() * grid.cell_volume
    mean = X.T @ r
    d = X - mean
    return mean, (d.T * r) @ d + np.diag(grid.spacing ** 2 / 12)


def lyapunov_covariance(H, S, lr, batch_size=1, kind="discrete") -> np.ndarray:
    r"""Stationary covariance of SGD on a quadratic model (module docstring).

    :func:`sdesim.linalg.lyapunov_covariance`, which also takes a ``QuadraticModel`` (or a
    catalog landscape of one) as ``H`` with ``S=None``.

    Parameters
    ----------
    H, S : array_like, shape (dim, dim) (or scalars in 1D)
        Hessian and per-sample gradient covariance :math:`\Sigma_1`.
    lr : float
    batch_size : int
    kind : {"discrete", "sde", "modified"}

    Raises
    ------
    ValueError
        Unknown ``kind``; an eigenvalue of ``H`` (or :math:`\tilde H`) ``<= 0``;
        ``lr h_max >= 2`` for ``"discrete"`` (linearly unstable, no stationary state).
    LossKindError
        ``S=None`` and ``H`` is not a quadratic model.
    """
    if S is None:
        model = as_loss(H)
        if model.kind != "quadratic":
            raise LossKindError(f"S=None needs a QuadraticModel as H, got a {model.kind} loss")
        H, S = model.H, model.S
    return linalg.lyapunov_covariance(H, S, lr, batch_size, kind)


def stationary_variance_1d(h, s, lr, batch_size=1, kind="discrete"):
    r"""1D closed forms: :math:`\frac{\eta s}{B h (2 - \eta h)}`, :math:`\frac{\eta s}{2 B h}`,
    :math:`\frac{\eta s}{2 B h (1 + \eta h / 2)}` for ``kind`` ``"discrete"``, ``"sde"``, ``"modified"``.

    Broadcasts over array arguments; returns NaN where no stationary state exists.
    """
    h, s, lr = (np.asarray(x, dtype=float) for x in (h, s, lr))
    if kind not in linalg.LYAPUNOV_KINDS:
        raise ConfigError(f"kind must be one of {linalg.LYAPUNOV_KINDS}, got {kind!r}")
    factor = {"discrete": 2 - lr * h, "sde": 2.0, "modified": 2 + lr * h}[kind]
    with np.errstate(divide="ignore", invalid="ignore"):
        v = lr * s / (batch_size * h * factor)
    v = np.where((h > 0) & (factor > 0), v, np.nan)
    return v if v.ndim else float(v)


def variance_ratio_discrete_sde(lr, h):
    r"""Discrete SGD over SDE stationary variance in 1D: :math:`2 / (2 - \eta h)` (NaN for :math:`\eta h \ge 2`)."""
    x = np.asarray(lr, dtype=float) * np.asarray(h, dtype=float)
    with np.errstate(divide="ignore"):
        r = np.where(x < 2, 2.0 / (2.0 - x), np.nan)
    return r if r.ndim else float(r)
