r"""Where SGD ends up: the fraction of runs in each basin as a function of ``lr`` and ``B``.

The temperature :math:`T = lr / 2B` largely decides which minima SGD ends in (Jastrzebski
et al. 2017, "Three factors influencing minima in SGD"). Each fraction :math:`\hat p` over
:math:`N` independent runs has the binomial standard error :math:`\sqrt{\hat p (1 - \hat p) / N}`.
At long times the isotropic SGD diffusion occupies basin :math:`k` with the Gibbs probability

.. math:: p_k = \int_{\text{basin } k} e^{-C/T} \Big/ \int e^{-C/T}.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sdesim.errors import ConfigError, ShapeError

__all__ = ["BasinFractions", "PhaseDiagram", "basin_fractions", "gibbs_basin_probabilities", "phase_diagram"]


@dataclass(frozen=True)
class BasinFractions:
    """Fractions ``(K,)`` of particles in each basin, binomial standard errors ``(K,)``, count ``n``.

    ``unassigned`` is the fraction with no basin (diverged, or label ``-1``).
    """

    fractions: np.ndarray
    se: np.ndarray
    n: int
    unassigned: float


def basin_fractions(W, basins) -> BasinFractions:
    """Fractions of the points ``W (N, dim)`` (e.g. ``result.final``) in each of ``basins``' basins."""
    W = np.asarray(W, dtype=float)
    if W.ndim != 2:
        raise ShapeError(f"W must have shape (N, dim), got {W.shape}")
    labels = basins(W)
    n = len(labels)
    k = len(basins.centers)
    counts = np.bincount(labels[labels >= 0], minlength=k)
    p = counts / n
    return BasinFractions(p, np.sqrt(p * (1 - p) / n), n, float(np.mean(labels < 0)))


@dataclass(frozen=True)
class PhaseDiagram:
    """Basin fractions over a sweep of ``(lr, B)`` settings.

    Attributes
    ----------
    lr, batch_size : (S,) arrays
    fractions, se : (S, K) arrays
        Fraction of runs ending in each basin and its binomial standard error.
    unassigned : (S,) array
    n : int
        Runs per setting.
    dataset : xarray.Dataset
        The sweep behind it (dimensions ``lr_batch_size``, ``seed``, ``basin``, ...), which
        :func:`sdesim.plot.phase_diagram` draws.
    """

    lr: np.ndarray
    batch_size: np.ndarray
    fractions: np.ndarray
    se: np.ndarray
    unassigned: np.ndarray
    n: int
    dataset: object = None

    @property
    def temperature(self) -> np.ndarray:
        """``lr / 2B`` per setting."""
        return self.lr / (2.0 * self.batch_size)


class _Settings:
    """``dynamic(lr, batch_size)`` with the keyword names a sweep sets (picklable)."""

    def __init__(self, dynamic):
        self.dynamic = dynamic
        self.__qualname__ = getattr(dynamic, "__qualname__", type(dynamic).__name__)

    def __call__(self, lr, batch_size):
        return self.dynamic(lr, batch_size)


def _sgd(lr, batch_size):
    from sdesim.dynamics import SGD
    return SGD(lr=lr, batch_size=batch_size)


def phase_diagram(loss, basins, settings, w0, n_particles, t_end, dynamic=_sgd, seed=0, executor="serial",
                  **options) -> PhaseDiagram:
    """Run each ``(lr, B)`` setting for time ``t_end`` and count where the runs end.

    A thin layer on :func:`sdesim.sweep` over one dimension of zipped ``(lr, batch_size)``
    pairs with the observable :func:`basin_fractions_of`.

    Parameters
    ----------
    loss : Loss, FiniteSumLoss or QuadraticModel
    basins : Basins
    settings : sequence of (lr, batch_size)
    w0 : (dim,) or (n_particles, dim) array
    n_particles : int
        Independent runs per setting.
    t_end : float
        Time ``t = k * lr`` of the final state (the same for every setting).
    dynamic : callable
        ``(lr, batch_size) -> Dynamic``; default ``SGD(lr=lr, batch_size=batch_size)``,
        e.g. ``lambda lr, B: SGDDiffusion(lr=lr, batch_size=B)`` for the SDE.
    seed : int
    executor : str or dask.distributed.Client
        Where the settings run (:func:`sdesim.sweep`).
    **options
        Passed to :func:`sdesim.sweep` (``backend``, ``dt``, ``integrator``, ``workers``, ``store``, ...).
    """
    from sdesim.sweeps import sweep
    from sdesim.sweeps.observables import basin_fractions_of

    settings = [(float(lr), int(b)) for lr, b in settings]
    if not settings:
        raise ConfigError("settings is empty: give a list of (lr, batch_size)")
    ds = sweep(loss, _Settings(dynamic), {("lr", "batch_size"): settings}, w0=w0, n_particles=n_particles,
               t_end=t_end, seeds=[seed], observe=[basin_fractions_of(basins)], executor=executor,
               **{"progress": False, **options})
    one = ds.isel(seed=0)
    return PhaseDiagram(ds["lr"].values.astype(float), ds["batch_size"].values, one["fraction"].values,
                        one["fraction_se"].values, one["unassigned"].values, int(n_particles), ds)


def basin_masses(grid, rho, basins) -> np.ndarray:
    """Mass of a density on a ``Grid`` in each basin (cells labelled by their centres): ``(K,)``.

    With ``FokkerPlanck.steady_state()`` this is the long-time answer for any noise,
    anisotropic included.
    """
    rho = grid.normalize(rho)
    labels = basins(grid.centers)
    ok = labels >= 0
    return np.bincount(labels[ok], weights=rho[ok] * grid.cell_volume, minlength=len(basins.centers))


def gibbs_basin_probabilities(loss, basins, temperature, bounds, n=2001) -> np.ndarray:
    r"""Gibbs occupation :math:`p_k` of each basin by quadrature of :math:`e^{-C/T}` on a grid.

    Parameters
    ----------
    loss : Loss
    basins : Basins
    temperature : float
    bounds : sequence of (low, high), one per dimension
        Box holding (almost) all of the mass.
    n : int
        Grid points per dimension (midpoint rule).

    Returns
    -------
    (K,) array
        Sums to one less the mass of unassigned grid points.
    """
    if len(bounds) != loss.dim:
        raise ShapeError(f"bounds needs {loss.dim} (low, high) pairs, got {len(bounds)}")
    if not temperature > 0:
        raise ConfigError(f"temperature must be positive, got {temperature}")
    axes = [lo + (np.arange(n) + 0.5) * (hi - lo) / n for lo, hi in bounds]
    W = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, loss.dim)
    c = np.asarray(loss.value(W))
    weight = np.exp(-(c - c.min()) / temperature)
    labels = basins(W)
    k = len(basins.centers)
    return np.bincount(labels[labels >= 0], weights=weight[labels >= 0], minlength=k) / weight.sum()
