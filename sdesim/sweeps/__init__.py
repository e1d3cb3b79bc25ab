"""Sweeps: grids of runs over ``(lr, B, seed, any parameter)`` as ``xarray`` datasets.

``sd.sweep(loss, sd.SGD, over={"lr": lrs, "batch_size": Bs}, seeds=8, w0=..., t_end=...)``
runs ``simulate`` at every point of the grid and reduces each run to a few numbers
(:mod:`.observables`), on one machine or a Dask cluster (:mod:`.executors`), in memory or
written point by point to a zarr store that survives interruption (:mod:`.store`). The
grid is checked point by point before anything runs (:mod:`.spec`).

Seed ``s`` draws the same random streams at every grid point (common random numbers, as
``compare`` does): differences between points are not noise between seeds. Each point
depends on its coordinates alone, so the dataset is bit-identical whatever the executor,
the number of workers or the order in which points finish.
"""

from __future__ import annotations

import json
from contextlib import contextmanager

import numpy as np

from sdesim.errors import ConfigError
from sdesim.sweeps import executors
from sdesim.sweeps.observables import (
    FinalState,
    Observable,
    basin_fractions_of,
    escape_times_of,
    first_passage_of,
    sharpness_of,
    stationary_of,
    trajectories,
)
from sdesim.sweeps.spec import Constant, build_spec
from sdesim.sweeps.store import open_sink

__all__ = [
    "Constant",
    "Observable",
    "basin_fractions_of",
    "escape_times_of",
    "first_passage_of",
    "sharpness_of",
    "stationary_of",
    "sweep",
    "trajectories",
]


def sweep(loss, dynamic, over=None, *, w0, n_particles=None, steps=None, t_end=None, dt=None, seeds=1,
          fixed=None, observe=(), executor="serial", workers=None, store=None, resume=False, progress=None,
          backend="numba", integrator=None, bound=1e8, numba_threads=None):
    """Run ``dynamic`` on ``loss`` at every point of a grid and every seed; return an ``xarray.Dataset``.

    Parameters
    ----------
    loss : loss, catalog landscape, or function ``(**params) -> loss``
    dynamic : dynamic class (``sd.SGD``), dynamic (``sd.SGD(0.1, 4)``), or function ``(**values) -> dynamic``
    over : mapping ``{name: values}``
        One grid dimension per name: a field of the dynamic, a loss parameter (a catalog
        landscape's, a ``Loss`` parameter bound to a callable such as :class:`Constant`, or a
        parameter of the loss function), or ``n_particles``, ``steps``, ``t_end``, ``dt``. A tuple of
        names zips them into one dimension: ``{("lr", "batch_size"): [(0.1, 4), (0.2, 8)]}``.
    w0, n_particles, steps, t_end, dt, backend, integrator, bound
        As :func:`sdesim.simulate`, the same at every point.
    seeds : int or list of int
        A count ``n`` (seeds ``0 .. n-1``) or the seeds: the ``seed`` dimension.
    fixed : mapping, optional
        Values of other names, the same at every point (``{"sampling": "shuffle"}``).
    observe : sequence of Observable
        Added to the default :class:`~sdesim.sweeps.observables.FinalState` (final ``mean`` and
        ``variance`` per coordinate, mean ``loss``, ``diverged`` fraction), e.g.
        ``sd.analysis.basin_fractions_of(basins)``.
    executor : ``"serial"``, ``"processes"``, ``"dask"``, a ``dask.distributed.Client`` or a scheduler address
    workers : int, optional
        Processes of ``"processes"`` and ``"dask"`` (default: one per core).
    store : path, optional
        A zarr store written point by point (``xr.open_zarr(store)`` reads it, finished or not).
    resume : bool
        Complete the sweep in ``store``, computing only its missing points.
    progress : bool, optional
        A progress bar (default: shown once the sweep has run for two seconds).
    numba_threads : int, optional
        Numba threads per worker (default ``cores // workers``).

    Returns
    -------
    xarray.Dataset
        Dimensions: the swept names, ``seed``, then the observables' own (``dim``, ``basin``, ...);
        coordinates carry the values; ``attrs["sweep"]`` is the configuration (JSON).
    """
    import sdesim

    executors.check(executor, workers, numba_threads)
    observe = [] if observe is None else list(observe) if isinstance(observe, (list, tuple)) else [observe]
    bad = [o for o in observe if not isinstance(o, Observable)]
    if bad:
        raise ConfigError(f"observe takes observables (e.g. sd.analysis.basin_fractions_of(basins)), got {bad[0]!r}")
    settings = {k: v for k, v in (("n_particles", n_particles), ("steps", steps), ("t_end", t_end), ("dt", dt))
                if v is not None}
    spec = build_spec(loss, dynamic, over, seeds, fixed, w0, settings, [FinalState(), *observe], backend,
                      integrator, bound)
    layout = spec.validate()
    attrs = {"sweep": json.dumps(spec.describe()), "sdesim_version": sdesim.__version__}
    sink = open_sink(store, layout, attrs, resume)
    todo = [int(i) for i in np.flatnonzero(~sink.done.ravel())]
    with _bar(progress, spec.n_points, spec.n_points - len(todo)) as bar, _flushing(sink):
        if todo and executor != "serial":
            first, todo = todo[0], todo[1:]
            sink.write(first, spec.run(first))          # in this process: compiles the kernels once
            bar.update()
            spec.warm(todo, after=first)                 # and every other kernel the grid needs
        if todo:
            with executors.start(executor, workers, numba_threads) as runner:
                for i, out in runner.map(spec, todo):
                    sink.write(i, out)
                    bar.update()
    return layout.dataset(sink.arrays(), attrs)


@contextmanager
def _flushing(sink):
    """Write what finished whatever stops the sweep (Ctrl-C included)."""
    try:
        yield
    finally:
        sink.flush()


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n=1):
        pass


def _bar(progress, total, done):
    if progress is False:
        return _NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=total, initial=done, unit="point", desc="sweep", delay=0 if progress else 2.0)
