"""The entry point: ``simulate`` one dynamic, or ``compare`` several on the same loss.

Every dynamic runs on the clock ``t = k * lr``: discrete dynamics take
``steps`` (or ``t_end``), continuous ones ``t_end`` (or ``steps``) and ``dt``
(default ``lr / 10``). ``record_every=k`` records steps ``0, k, 2k, ...`` and
always the final state. Runs proceed in segments, which bounds memory to what
is recorded, reports progress on long runs and never changes a random number.
"""

from __future__ import annotations

import sys
import time
import warnings
from importlib import import_module

import numpy as np

from sdesim.backends.common import Problem, State
from sdesim.errors import ConfigError, DivergenceError, DivergenceWarning, ShapeError
from sdesim.result import Result

BACKENDS = {"numpy": "sdesim.backends.numpy_backend", "numba": "sdesim.backends.numba_backend",
            "cupy": "sdesim.backends.cupy_backend"}


def get_backend(name: str):
    """The backend module registered under ``name``."""
    try:
        return import_module(BACKENDS[name])
    except KeyError:
        raise ConfigError(f"unknown backend {name!r}; choose one of {sorted(BACKENDS)}") from None


def _clock(dynamic, steps, t_end, dt):
    """``(n_steps, dt)`` of a run."""
    lr = getattr(dynamic, "lr", None)
    if dynamic.continuous:
        if dt is None:
            if lr is None and t_end is None:
                raise ConfigError(f"{dynamic.label}: give dt (it has no learning rate to default to)")
            dt = lr / 10 if lr is not None else t_end / 1000
        if t_end is None:
            if steps is None:
                raise ConfigError("give t_end (or steps) for a continuous dynamic")
            t_end = steps * dt
        n = max(1, int(round(t_end / dt)))
        return n, t_end / n
    if dt is not None:
        raise ConfigError(f"{dynamic.label} is discrete: its step is lr = {lr}; do not pass dt")
    if steps is None:
        if t_end is None:
            raise ConfigError("give steps (or t_end) for a discrete dynamic")
        steps = int(round(t_end / lr))
    if int(steps) != steps or steps < 0:
        raise ConfigError(f"steps must be a non-negative integer, got {steps}")
    return int(steps), float(lr)


def _initial(w0, n_particles, dim, names):
    W0 = np.asarray(w0, dtype=float)
    if W0.ndim == 1:
        W0 = np.broadcast_to(W0, (n_particles, W0.shape[0]))
    if W0.ndim != 2 or W0.shape != (n_particles, dim):
        raise ShapeError(f"w0 must have shape ({dim},) or ({n_particles}, {dim}) "
                         f"(variables {', '.join(names)}), got {np.shape(w0)}")
    if not np.isfinite(W0).all():
        raise ShapeError("w0 has non-finite entries")
    return np.array(W0)


def simulate(loss, dynamic, w0, n_particles=1, steps=None, t_end=None, dt=None, record_every=1,
             backend="numba", seed=0, integrator=None, bound=1e8, on_divergence="warn",
             progress=None, segment_steps=None, reducers=(), keep="all") -> Result:
    """Simulate an ensemble of ``n_particles`` under ``dynamic`` on ``loss``.

    Parameters
    ----------
    loss : Loss, FiniteSumLoss or QuadraticModel
    dynamic : GD, SGD, GradientFlow, ModifiedFlow or SGDDiffusion
    w0 : (dim,) or (n_particles, dim) array
        Initial state(s).
    steps, t_end, dt : see the module docstring.
    record_every : int
        Record every ``k``-th step (and the final state).
    backend : {"numba", "numpy", "cupy"}
    seed : int
        Key of the counter-based random streams: same seed, same numbers on any
        backend segmentation or thread count.
    integrator : str, optional
        SDE scheme: ``"euler_maruyama"`` (default), ``"heun"``, ``"weak2"``,
        ``"milstein"``, ``"exact_ou"`` (quadratic models).
    bound : float
        A particle with a non-finite state or ``|w_i| > bound`` is stopped.
    on_divergence : {"warn", "raise", "ignore"}
    progress : bool, optional
        Print progress (default: only for runs longer than a few seconds).
    reducers : sequence of Reducer
        Streaming statistics fed with every recorded state (:mod:`sdesim.reducers`);
        their outputs land in ``result.reduced[reducer.name]``.
    keep : {"all", "final"}
        Keep every recorded state, or only the final one (bounded memory with reducers).

    Returns
    -------
    Result
        ``t (T,)``, ``w (T, N, dim)``, ``loss (T, N)``.
    """
    if on_divergence not in ("warn", "raise", "ignore"):
        raise ConfigError(f"on_divergence must be 'warn', 'raise' or 'ignore', got {on_divergence!r}")
    if keep not in ("all", "final"):
        raise ConfigError(f"keep must be 'all' or 'final', got {keep!r}")
    if int(record_every) != record_every or record_every < 1:
        raise ConfigError(f"record_every must be a positive integer, got {record_every}")
    if int(seed) != seed or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed}")
    n_steps, dt = _clock(dynamic, steps, t_end, dt)
    names = tuple(getattr(loss, "names", ())) or tuple(f"w{i}" for i in range(loss.dim))
    W0 = _initial(w0, n_particles, loss.dim, names)
    problem = Problem(loss, dynamic, n_particles, loss.dim, n_steps, dt, int(seed), integrator, bound)
    module = get_backend(backend)
    record = np.unique(np.append(np.arange(0, n_steps + 1, record_every), n_steps))
    state = State(W=W0, V=np.zeros_like(W0), diverged_at=np.full(n_particles, -1, np.int64))
    records = []
    # a segment holds at most ~5e6 recorded numbers (40 MB) and ~5e8 particle-steps (progress)
    per_record = max(n_particles * loss.dim, 1)
    seg = segment_steps or max(1, min(n_steps, record_every * max(1, 5_000_000 // per_record),
                                      max(1, 500_000_000 // per_record)))
    start = time.perf_counter()
    for k0 in range(0, n_steps, seg):
        k1 = min(n_steps, k0 + seg)
        steps_here = record[(record >= k0) & (record < k1)]
        segment = module.advance(problem, state, k0, k1, steps_here)
        for reducer in reducers:
            if len(segment):
                reducer.update(steps_here * dt, np.stack(segment))
        if keep == "all":
            records += segment
        elapsed = time.perf_counter() - start
        if progress or (progress is None and elapsed > 5.0 and k1 < n_steps):
            print(f"\r{dynamic.label}: step {k1}/{n_steps} ({elapsed:.1f} s)", end="", file=sys.stderr)
    if progress or (progress is None and time.perf_counter() - start > 5.0):
        print(file=sys.stderr)
    records.append(np.asarray(state.W).copy())
    for reducer in reducers:
        reducer.update(np.array([n_steps * dt]), records[-1][None])
    w = np.stack(records)
    if keep == "final":
        record = np.array([n_steps])
    report_divergence(problem, state.diverged_at, on_divergence)
    ok = np.isfinite(w).all(axis=2)
    values = np.full(w.shape[:2], np.nan)
    times = record * dt
    if getattr(loss, "time_parameters", ()):
        for i, t in enumerate(times):                      # the loss changes with t
            if ok[i].any():
                values[i, ok[i]] = loss.value(w[i, ok[i]], t)
    elif ok.any():
        values[ok] = loss.value(w[ok])                      # one call for every record
    metadata = {"label": dynamic.label, "dynamic": dynamic.describe(), "loss": repr(loss),
                "variables": list(names), "n_particles": n_particles, "n_steps": n_steps,
                "dt": dt, "record_every": int(record_every), "backend": backend, "seed": int(seed),
                "integrator": integrator, "bound": bound, "stepper": state.extra.get("stepper", "compiled")
                if backend == "numba" else "reference",
                "w0": np.asarray(w0, dtype=float).tolist() if np.ndim(w0) == 1
                else "per-particle"}
    return Result(t=times, w=w, loss=values, metadata=metadata, diverged_at=np.asarray(state.diverged_at),
                  reduced={r.name: r.result() for r in reducers})


def report_divergence(problem, diverged_at, on_divergence):
    """Warn or raise, naming how many particles diverged and the first step."""
    bad = diverged_at >= 0
    if not bad.any() or on_divergence == "ignore":
        return
    first = int(diverged_at[bad].min())
    message = (f"{problem.dynamic.label}: {int(bad.sum())} of {problem.n_particles} particles diverged "
               f"(non-finite or |w| > {problem.bound:g}), first at step {first} (t = {first * problem.dt:g})")
    if on_divergence == "raise":
        raise DivergenceError(message)
    warnings.warn(message, DivergenceWarning, stacklevel=3)


def compare(loss, dynamics, w0, n_particles=1, steps=None, t_end=None, **kwargs) -> list[Result]:
    """Run several dynamics on one loss from the same start and seed, on the same clock.

    ``t_end`` (or ``steps`` of the first discrete dynamic times its ``lr``) sets the
    common time span; each dynamic gets its own step count.
    """
    if t_end is None:
        if steps is None:
            raise ConfigError("give t_end (or steps)")
        first = next((d for d in dynamics if not d.continuous), None)
        if first is None:
            raise ConfigError("give t_end: none of the dynamics is discrete")
        t_end = steps * first.lr
    dt = kwargs.pop("dt", None)
    return [simulate(loss, d, w0, n_particles, t_end=t_end, dt=dt if d.continuous else None, **kwargs)
            for d in dynamics]
