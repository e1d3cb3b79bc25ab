r"""First-passage and escape times of ensembles, and their mean with standard errors.

Passages are read from a ``Result``'s records (:func:`first_passage_times`,
:func:`escape_times` between :class:`~sdesim.analysis.basins.Basins`) or streamed every
step (:class:`FirstPassage`); :func:`mean_escape_time` handles runs that never escaped
(right-censored times). Their theory, Kramers' law and the exact 1D mean first-passage
time, is in :mod:`sdesim.analysis.kramers`; both, and ``Basins``, are importable from here.
Times are in the simulator's clock ``t = k * lr``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sdesim.analysis.basins import Basins
from sdesim.analysis.kramers import ArrheniusFit, fit_arrhenius, kramers_time, mfpt_1d
from sdesim.backends.base import array_namespace, host_array
from sdesim.errors import ConfigError, ShapeError
from sdesim.reducers import Reducer

__all__ = [
    "ArrheniusFit",
    "Basins",
    "EscapeEstimate",
    "FirstPassage",
    "escape_times",
    "first_passage_times",
    "fit_arrhenius",
    "kramers_time",
    "mean_escape_time",
    "mfpt_1d",
]


def first_passage_times(result, target):
    """First recorded time each particle is in ``target``, measured from ``result.t[0]``.

    Parameters
    ----------
    result : Result
        ``w (T, N, dim)``; records every step (``record_every=1``) give exact
        discrete-time passages, sparser records overestimate them.
    target : callable
        ``W (..., dim) -> bool (...)``.

    Returns
    -------
    times : (N,) array
        First-passage time, or the censoring time (last finite record) if never.
    observed : (N,) bool array
        ``False`` for censored particles (never reached the target, or diverged first).
    """
    t = np.asarray(result.t)
    w = np.asarray(result.w)
    hit = np.asarray(target(w), dtype=bool)
    if hit.shape != w.shape[:2]:
        raise ShapeError(f"target must map (T, N, dim) to (T, N) booleans, got shape {hit.shape}")
    finite = np.isfinite(w).all(axis=2)
    hit &= finite
    observed = hit.any(axis=0)
    last_finite = np.where(finite.any(axis=0), len(t) - 1 - finite[::-1].argmax(axis=0), 0)
    return t[np.where(observed, hit.argmax(axis=0), last_finite)] - t[0], observed


def escape_times(result, basins, start=None, radius=None):
    """First recorded time each particle is in a basin other than its starting one.

    Parameters
    ----------
    result : Result
    basins : Basins
    start : (N,) int array, optional
        Starting basin labels; default ``basins(result.w[0])``.
    radius : float, optional
        Count an escape only on arrival within ``radius`` of another basin's centre
        (a transition to the other minimum, Kramers' time) rather than on crossing
        the basin boundary. Crossing times of a boundary through a saddle are biased
        upward by sparse records (recrossings between records are missed).

    Returns
    -------
    times, observed : (N,) arrays, as :func:`first_passage_times`.
    """
    start = basins(result.w[0]) if start is None else np.asarray(start)
    if start.shape != (result.n_particles,):
        raise ShapeError(f"start must have shape ({result.n_particles},), got {start.shape}")

    def left(W):
        lab = basins(W)
        out = (lab >= 0) & (lab != start)
        if radius is not None:
            dist = np.linalg.norm(np.asarray(W)[..., None, :] - basins.centers, axis=-1)
            out &= np.take_along_axis(dist, np.maximum(lab, 0)[..., None], axis=-1)[..., 0] <= radius
        return out
    return first_passage_times(result, left)


@dataclass
class FirstPassage(Reducer):
    """Streaming first-passage times into ``target`` (a callable ``W (..., dim) -> bool``).

    Feed it every step (``simulate(..., record_every=1, reducers=[fp], keep="final")``)
    for exact discrete-time passages at bounded memory. ``result()`` gives
    ``{"times": (N,), "observed": (N,) bool}``, times from the first record,
    censored at the last record seen. On a GPU backend the records, ``target``'s
    work and the times stay on the device (``target`` gets device arrays; write it
    with array operations); ``result()`` brings the times to the host.
    """

    target: object = None
    name: str = "first_passage"
    t0: float | None = None
    t_last: float | None = None
    times: np.ndarray | None = field(default=None, repr=False)
    any_array = True

    def update(self, t, w):
        t = np.asarray(t)
        if not len(t):
            return
        xp = array_namespace(w)
        if self.t0 is None:
            self.t0 = float(t[0])
            self.times = xp.full(w.shape[1], np.nan)
        self.t_last = float(t[-1])
        todo = xp.flatnonzero(xp.isnan(self.times))
        if not len(todo):
            return
        w = w[:, todo]
        hit = xp.asarray(self.target(w), dtype=bool) & xp.isfinite(w).all(axis=2)
        any_hit = hit.any(axis=0)
        self.times[todo[any_hit]] = xp.asarray(t)[hit[:, any_hit].argmax(axis=0)] - self.t0

    def result(self) -> dict:
        if self.t0 is None:
            raise ConfigError("FirstPassage saw no records")
        times = host_array(self.times)
        observed = ~np.isnan(times)
        return {"times": np.where(observed, times, self.t_last - self.t0), "observed": observed}


@dataclass(frozen=True)
class EscapeEstimate:
    """Mean escape time with its standard error.

    ``method`` is ``"mean"`` (every particle escaped: sample mean, ``se = sd / sqrt(n)``) or
    ``"exponential"`` (censored data: the exponential maximum-likelihood estimate
    ``tau = sum(times) / n_observed``, ``se = tau / sqrt(n_observed)``).
    """

    mean: float
    se: float
    n: int
    n_observed: int
    method: str

    @property
    def rate(self) -> float:
        """``1 / mean``."""
        return 1.0 / self.mean


def mean_escape_time(times, observed=None, method="auto") -> EscapeEstimate:
    r"""Mean first-passage time from possibly right-censored times.

    Parameters
    ----------
    times : (N,) array
        Passage times, or censoring times where ``observed`` is ``False``.
    observed : (N,) bool array, optional
        Default: all observed.
    method : {"auto", "mean", "exponential"}
        ``"auto"``: ``"mean"`` when nothing is censored, else ``"exponential"``:
        for exponential passage times (the Kramers regime, :math:`\Delta C / T \gg 1`)
        the MLE is :math:`\hat\tau = \sum_i t_i / n_{\rm obs}`, standard error
        :math:`\hat\tau / \sqrt{n_{\rm obs}}`.

    Raises
    ------
    ValueError
        No passage observed, or ``method="mean"`` with censored data.
    """
    times = np.asarray(times, dtype=float).ravel()
    observed = np.ones(times.shape, bool) if observed is None else np.asarray(observed, bool).ravel()
    if observed.shape != times.shape:
        raise ShapeError(f"observed has shape {observed.shape}, times {times.shape}")
    n, k = times.size, int(observed.sum())
    if k == 0:
        raise ConfigError(f"none of the {n} particles escaped: run longer or raise the temperature")
    if method == "auto":
        method = "mean" if k == n else "exponential"
    if method == "mean":
        if k < n:
            raise ConfigError(f"{n - k} of {n} times are censored: use method='exponential'")
        se = times.std(ddof=1) / np.sqrt(n) if n > 1 else np.inf
        return EscapeEstimate(float(times.mean()), float(se), n, k, "mean")
    if method == "exponential":
        tau = times.sum() / k
        return EscapeEstimate(float(tau), float(tau / np.sqrt(k)), n, k, "exponential")
    raise ConfigError(f"method must be 'auto', 'mean' or 'exponential', got {method!r}")
