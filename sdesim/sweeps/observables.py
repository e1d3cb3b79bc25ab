"""Observables: what a sweep keeps of each run, as named arrays.

Every sweep records :class:`FinalState` (final mean and variance per coordinate, mean
final loss, fraction diverged); ``observe=[...]`` adds more. The analyses that reduce a
``Result`` to numbers plug in here: :func:`basin_fractions_of`, :func:`stationary_of`,
:func:`first_passage_of`, :func:`escape_times_of`, :func:`sharpness_of`; and
:func:`trajectories` keeps the recorded states themselves (nothing else does).

An observable is a small frozen dataclass (its fields describe it in the dataset's
attributes) with

- ``variables``: ``{name: dims}`` of the float arrays it returns;
- ``dims(point, plan)``: the coordinates of its own dimensions (``{"basin": [0, 1]}``);
- ``check(point, plan)``: raise a ``ConfigError`` before anything runs;
- ``record_every`` (``None``: only the final state) and ``keep`` (``"all"`` when it reads
  ``result.w``; ``"final"`` when it needs only the final state or its ``reducers(point)``,
  streaming reducers fed with every record);
- ``__call__(result, point) -> {name: array}``.

Subclass :class:`Observable` for your own.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from sdesim.errors import ConfigError, ShapeError

__all__ = [
    "BasinFractions",
    "EscapeTimes",
    "FinalState",
    "FirstPassageTimes",
    "Observable",
    "Sharpness",
    "Stationary",
    "Trajectories",
    "basin_fractions_of",
    "escape_times_of",
    "first_passage_of",
    "sharpness_of",
    "stationary_of",
    "trajectories",
]


class Observable:
    """Base class (module docstring)."""

    record_every = None
    keep = "final"

    @property
    def variables(self) -> dict:
        return {}

    def dims(self, point, plan) -> dict:
        return {}

    def check(self, point, plan):
        """Raise a ``ConfigError`` if this observable cannot be computed at ``point``."""

    def reducers(self, point) -> list:
        return []

    def __call__(self, result, point) -> dict:
        raise NotImplementedError

    def describe(self) -> dict:
        """Plain description (type and fields) for the sweep's attributes."""
        return _describe(self)


def _describe(obj):
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {"type": type(obj).__name__, **{f.name: _describe(getattr(obj, f.name))
                                               for f in dataclasses.fields(obj)}}
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (list, tuple)):
        return [_describe(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if callable(obj) and hasattr(obj, "__qualname__"):
        return obj.__qualname__        # stable across processes, unlike repr(function)
    return repr(obj)


def _survivors(result):
    return result.final[~result.diverged]


def _mean_se(x):
    """Mean and standard error of the mean (NaN where undefined)."""
    x = np.asarray(x, dtype=float)
    if not len(x):
        return np.nan, np.nan
    return float(x.mean()), float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else np.nan


@dataclass(frozen=True)
class FinalState(Observable):
    """Final ``mean`` and ``variance`` (unbiased) per coordinate and mean ``loss`` of the surviving
    particles; ``diverged``, the fraction of particles stopped by the bound. Every sweep records it."""

    @property
    def variables(self):
        return {"mean": ("dim",), "variance": ("dim",), "loss": (), "diverged": ()}

    def dims(self, point, plan):
        return {"dim": np.array(plan.loss.names, dtype=object)}

    def __call__(self, result, point):
        w = _survivors(result)
        dim = result.dim
        mean = w.mean(axis=0) if len(w) else np.full(dim, np.nan)
        var = w.var(axis=0, ddof=1) if len(w) > 1 else np.full(dim, np.nan)
        loss = result.loss[-1][~result.diverged]
        return {"mean": mean, "variance": var, "loss": float(loss.mean()) if len(loss) else np.nan,
                "diverged": float(result.diverged.mean())}


@dataclass(frozen=True)
class BasinFractions(Observable):
    """``fraction (basin)`` of particles ending in each basin, its binomial ``fraction_se``, and the
    ``unassigned`` fraction (diverged or in no basin): :func:`sdesim.analysis.basin_fractions`."""

    basins: object

    @property
    def variables(self):
        return {"fraction": ("basin",), "fraction_se": ("basin",), "unassigned": ()}

    def dims(self, point, plan):
        return {"basin": np.arange(len(self.basins.centers))}

    def check(self, point, plan):
        if self.basins.dim != plan.dim:
            raise ShapeError(f"the basins have dimension {self.basins.dim}, the loss {plan.dim}")

    def __call__(self, result, point):
        from sdesim.analysis.phase import basin_fractions
        fr = basin_fractions(result.final, self.basins)
        return {"fraction": fr.fractions, "fraction_se": fr.se, "unassigned": fr.unassigned}


@dataclass(frozen=True)
class Stationary(Observable):
    """Late-time mean and covariance with standard errors (:func:`sdesim.analysis.stationary_statistics`)
    from the states recorded every ``record_every`` steps after the ``burn_in`` fraction of the run."""

    burn_in: float = 0.5
    batches: int = 1
    record_every: int = 10
    keep = "all"

    @property
    def variables(self):
        return {"stationary_mean": ("dim",), "stationary_mean_se": ("dim",),
                "stationary_cov": ("dim", "dim2"), "stationary_cov_se": ("dim", "dim2")}

    def dims(self, point, plan):
        names = np.array(plan.loss.names, dtype=object)
        return {"dim": names, "dim2": names}

    def check(self, point, plan):
        _check_every(self)
        if not 0 <= self.burn_in < 1:
            raise ConfigError(f"burn_in must be a fraction in [0, 1), got {self.burn_in}")
        if plan.n_particles * self.batches < 2:
            raise ConfigError("stationary_of needs n_particles * batches >= 2 for its standard errors")
        late = len(_records(plan.n_steps, self.record_every)) * (1 - self.burn_in)
        if self.batches > late:
            raise ConfigError(f"stationary_of(batches={self.batches}) needs as many late records, there are "
                              f"about {int(late)}: record more often")

    def __call__(self, result, point):
        from sdesim.analysis.stationary import stationary_statistics
        if result.diverged.all():
            d = result.dim
            return {"stationary_mean": np.full(d, np.nan), "stationary_mean_se": np.full(d, np.nan),
                    "stationary_cov": np.full((d, d), np.nan), "stationary_cov_se": np.full((d, d), np.nan)}
        st = stationary_statistics(result, burn_in=self.burn_in, batches=self.batches)
        return {"stationary_mean": st.mean, "stationary_mean_se": st.mean_se,
                "stationary_cov": st.covariance, "stationary_cov_se": st.covariance_se}


@dataclass(frozen=True)
class FirstPassageTimes(Observable):
    """Mean first-passage time into ``target`` (``W (..., dim) -> bool``) with its standard error
    (:func:`sdesim.analysis.mean_escape_time`: censored runs handled), streamed every
    ``record_every`` steps: ``{prefix}_time``, ``{prefix}_time_se``, and the fraction that
    arrived, ``{prefix}_fraction``. NaN times where no particle arrived."""

    target: object
    record_every: int = 1
    prefix: str = "passage"

    @property
    def variables(self):
        return {f"{self.prefix}_time": (), f"{self.prefix}_time_se": (), f"{self.prefix}_fraction": ()}

    def check(self, point, plan):
        _check_every(self)
        if not callable(self.target):
            raise ConfigError(f"target must be a callable W (..., dim) -> bool, got {self.target!r}")

    def _target(self, point):
        return self.target

    def reducers(self, point):
        from sdesim.analysis.escape import FirstPassage
        return [FirstPassage(target=self._target(point), name=self.prefix)]

    def __call__(self, result, point):
        from sdesim.analysis.escape import mean_escape_time
        fp = result.reduced[self.prefix]
        p = self.prefix
        frac = float(np.mean(fp["observed"]))
        if not fp["observed"].any():
            return {f"{p}_time": np.nan, f"{p}_time_se": np.nan, f"{p}_fraction": frac}
        est = mean_escape_time(fp["times"], fp["observed"])
        return {f"{p}_time": est.mean, f"{p}_time_se": est.se, f"{p}_fraction": frac}


@dataclass(frozen=True)
class _LeftBasin:
    """Target of :class:`EscapeTimes`: in a basin other than ``start`` (within ``radius`` of its centre)."""

    basins: object
    start: int
    radius: float | None = None

    def __call__(self, W):
        lab = self.basins(W)
        out = (lab >= 0) & (lab != self.start)
        if self.radius is not None:
            dist = np.linalg.norm(np.asarray(W)[..., None, :] - self.basins.centers, axis=-1)
            out &= np.take_along_axis(dist, np.maximum(lab, 0)[..., None], axis=-1)[..., 0] <= self.radius
        return out


@dataclass(frozen=True)
class EscapeTimes(FirstPassageTimes):
    """Mean time to leave the starting basin (every particle must start in the same one), as
    :func:`sdesim.analysis.escape_times`: ``escape_time``, ``escape_time_se``, ``escape_fraction``."""

    target: object = None
    prefix: str = "escape"
    basins: object = None
    radius: float | None = None

    def check(self, point, plan):
        from sdesim.plan import initial_states
        _check_every(self)
        if self.basins.dim != plan.dim:
            raise ShapeError(f"the basins have dimension {self.basins.dim}, the loss {plan.dim}")
        labels = self.basins(initial_states(point.w0, plan.n_particles, plan.dim, plan.loss.names))
        if len(np.unique(labels)) != 1 or labels[0] < 0:
            raise ConfigError("escape_times_of needs every particle to start in one basin; "
                              f"w0 starts in basins {sorted(set(labels.tolist()))}")

    def _target(self, point):
        start = int(self.basins(np.atleast_2d(np.asarray(point.w0, dtype=float)))[0])
        return _LeftBasin(self.basins, start, self.radius)


@dataclass(frozen=True)
class Sharpness(Observable):
    """Top Hessian eigenvalue at the final state, mean over surviving particles and its standard
    error (:func:`sdesim.analysis.sharpness`): ``sharpness``, ``sharpness_se``; compare with ``2 / lr``."""

    @property
    def variables(self):
        return {"sharpness": (), "sharpness_se": ()}

    def __call__(self, result, point):
        from sdesim.analysis.sharpness import sharpness
        w = _survivors(result)
        mean, se = _mean_se(sharpness(point.loss, w)) if len(w) else (np.nan, np.nan)
        return {"sharpness": mean, "sharpness_se": se}


@dataclass(frozen=True)
class Trajectories(Observable):
    """The states recorded every ``record_every`` steps (and the last): ``w (record, particle, dim)``
    and their times ``t (record)``. The only observable that keeps trajectories."""

    record_every: int = 1
    keep = "all"

    @property
    def variables(self):
        return {"w": ("record", "particle", "dim"), "t": ("record",)}

    def dims(self, point, plan):
        return {"record": np.arange(len(_records(plan.n_steps, self.record_every))),
                "particle": np.arange(plan.n_particles), "dim": np.array(plan.loss.names, dtype=object)}

    def check(self, point, plan):
        _check_every(self)

    def __call__(self, result, point):
        return {"w": result.w, "t": result.t}


def _records(n_steps, every):
    return np.unique(np.append(np.arange(0, n_steps + 1, every), n_steps))


def _check_every(obs):
    k = obs.record_every
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"{type(obs).__name__}: record_every must be a positive integer, got {k!r}")


def basin_fractions_of(basins) -> BasinFractions:
    """Observable: fraction of particles in each of ``basins``' basins at the end of each run."""
    return BasinFractions(basins)


def stationary_of(burn_in=0.5, batches=1, record_every=10) -> Stationary:
    """Observable: stationary mean and covariance with standard errors (late records)."""
    return Stationary(burn_in, batches, record_every)


def first_passage_of(target, record_every=1, prefix="passage") -> FirstPassageTimes:
    """Observable: mean first-passage time into ``target`` (censoring handled)."""
    return FirstPassageTimes(target, record_every, prefix)


def escape_times_of(basins, radius=None, record_every=1) -> EscapeTimes:
    """Observable: mean escape time from the starting basin (into another, within ``radius``)."""
    return EscapeTimes(record_every=record_every, basins=basins, radius=radius)


def sharpness_of() -> Sharpness:
    """Observable: top Hessian eigenvalue at the final state."""
    return Sharpness()


def trajectories(record_every=1) -> Trajectories:
    """Observable: the recorded states themselves."""
    return Trajectories(record_every)
