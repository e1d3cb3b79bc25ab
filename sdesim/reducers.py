r"""Streaming reducers: statistics of long runs without keeping every state.

``simulate(..., reducers=[...], keep="final")`` feeds each segment's recorded
states to the reducers and keeps only the final state, so memory stays bounded
by one segment whatever the run length. The reducers here work on the records in
whatever array module the backend keeps them (NumPy, or CuPy on a GPU backend):
they reduce there and bring only their small results to the host.

- :class:`RunningMoments`: mean and covariance over particles and times;
- :class:`Histogram`: a histogram of one coordinate over particles and times;
- :class:`BasinCounts`: how many particles sit nearest each of a set of minima, per recorded time;
- first-passage times: :class:`sdesim.analysis.escape.FirstPassage`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from sdesim.backends.base import array_namespace, host_array
from sdesim.errors import ConfigError, ShapeError


class Reducer(ABC):
    """Consumes recorded states ``w (R, N, dim)`` at times ``t (R,)``, segment by segment."""

    name: str = ""
    any_array = False
    """Whether :meth:`update` takes the records in any array module (e.g. CuPy arrays on a GPU backend);
    ``simulate`` gives the others NumPy copies."""

    @abstractmethod
    def update(self, t, w):
        """Fold in the records of one segment."""

    @abstractmethod
    def result(self) -> dict:
        """Named arrays."""


@dataclass
class RunningMoments(Reducer):
    r"""Mean and covariance over particles and recorded times :math:`t \ge` ``burn_in``.

    Pooled with Chan, Golub & LeVeque's parallel update,
    :math:`M_{AB} = M_A + M_B + \delta\delta^T n_A n_B / n`, stable for long runs.
    Diverged (NaN) particles are skipped. Sums are taken in float64 whatever the records' type
    (float32 records are upcast block by block).
    """

    burn_in: float = 0.0
    name: str = "moments"
    count: int = 0
    mean: np.ndarray | None = None
    m2: np.ndarray | None = field(default=None, repr=False)

    any_array = True

    def update(self, t, w):
        x = _finite_states(after(t, w, self.burn_in)).astype(np.float64, copy=False)
        if not len(x):
            return
        n_b = len(x)
        mean_b = x.mean(axis=0)
        d = x - mean_b
        m2_b = host_array(d.T @ d)
        mean_b = host_array(mean_b)
        if self.count == 0:
            self.count, self.mean, self.m2 = n_b, mean_b, m2_b
            return
        n = self.count + n_b
        delta = mean_b - self.mean
        self.m2 = self.m2 + m2_b + np.outer(delta, delta) * self.count * n_b / n
        self.mean = self.mean + delta * n_b / n
        self.count = n

    def result(self) -> dict:
        if self.count == 0:
            raise ConfigError(f"RunningMoments saw no records at t >= {self.burn_in}")
        return {"mean": self.mean, "covariance": self.m2 / max(self.count - 1, 1),
                "count": np.array(self.count)}


@dataclass
class Histogram(Reducer):
    r"""Histogram of coordinate ``coordinate`` over particles and recorded times :math:`t \ge` ``burn_in``.

    ``result()``: ``edges``, ``counts`` per bin, ``count`` (finite states seen, inside the
    edges or not) and ``density = counts / (count * width)``, an estimate of the
    coordinate's probability density. Diverged (NaN) particles are skipped.
    """

    edges: np.ndarray = None
    coordinate: int = 0
    burn_in: float = 0.0
    name: str = "histogram"
    counts: np.ndarray | None = field(default=None, repr=False)
    count: int = 0
    any_array = True

    def __post_init__(self):
        edges = np.asarray(self.edges, dtype=float)
        if edges.ndim != 1 or len(edges) < 2 or not np.all(np.diff(edges) > 0):
            raise ShapeError(f"edges must be an increasing 1-D array of at least 2 numbers, got {self.edges!r}")
        self.edges = edges
        self.counts = np.zeros(len(edges) - 1, np.int64)

    def update(self, t, w):
        w = after(t, w, self.burn_in)
        if self.coordinate not in range(-w.shape[-1], w.shape[-1]):
            raise ShapeError(f"coordinate {self.coordinate} is not one of the {w.shape[-1]} coordinates")
        x = _finite_states(w)[:, self.coordinate]
        xp = array_namespace(x)
        self.counts += host_array(xp.histogram(x, bins=xp.asarray(self.edges))[0]).astype(np.int64)
        self.count += len(x)

    def result(self) -> dict:
        if self.count == 0:
            raise ConfigError(f"Histogram saw no finite records at t >= {self.burn_in}")
        return {"edges": self.edges, "counts": self.counts, "count": np.array(self.count),
                "density": self.counts / (self.count * np.diff(self.edges))}


@dataclass
class BasinCounts(Reducer):
    """How many particles sit nearest each of the ``centers (K, dim)`` (e.g. the minima), per recorded time.

    ``result()``: ``t (T,)``, ``counts (T, K)`` and ``fractions = counts / N`` (diverged
    particles count in no basin). The nearest centre is the basin of ``Basins(centers)``
    (:class:`sdesim.analysis.basins.Basins`, ``method="nearest"``).
    """

    centers: np.ndarray = None
    name: str = "basins"
    t: list = field(default_factory=list, repr=False)
    counts: list = field(default_factory=list, repr=False)
    n_particles: int = 0
    any_array = True

    def __post_init__(self):
        c = np.asarray(self.centers, dtype=float)
        if c.ndim != 2 or len(c) < 1:
            raise ShapeError(f"centers must have shape (K, dim), got {np.shape(self.centers)}")
        self.centers = c

    def update(self, t, w):
        if w.shape[-1] != self.centers.shape[1]:
            raise ShapeError(f"centers have dim {self.centers.shape[1]}, the states {w.shape[-1]}")
        xp = array_namespace(w)
        best = xp.full(w.shape[:2], np.inf)
        label = xp.full(w.shape[:2], -1)
        for k, c in enumerate(self.centers):          # squared distances, one centre at a time
            d2 = ((w - xp.asarray(c)) ** 2).sum(axis=-1)
            closer = d2 < best                          # NaN (diverged) is never closer
            best = xp.where(closer, d2, best)
            label = xp.where(closer, k, label)
        self.counts.append(host_array(xp.stack([(label == k).sum(axis=1) for k in range(len(self.centers))],
                                               axis=1)))
        self.t += list(np.asarray(t, dtype=float))
        self.n_particles = w.shape[1]

    def result(self) -> dict:
        if not self.t:
            raise ConfigError("BasinCounts saw no records")
        counts = np.concatenate(self.counts, axis=0)
        return {"t": np.array(self.t), "counts": counts, "fractions": counts / self.n_particles}


def after(t, w, burn_in):
    """The records ``w (R, N, dim)`` at times ``t >= burn_in`` (``w`` itself when all are)."""
    keep = np.asarray(t) >= burn_in
    if keep.all():
        return w
    return w[array_namespace(w).asarray(np.flatnonzero(keep))]


def _finite_states(w):
    """The finite states of ``w (..., dim)`` as ``(n, dim)`` (a view when all are finite)."""
    x = w.reshape(-1, w.shape[-1])
    finite = array_namespace(x).isfinite(x).all(axis=1)
    return x if bool(finite.all()) else x[finite]
