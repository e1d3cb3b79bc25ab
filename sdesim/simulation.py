"""The entry point: ``simulate`` one dynamic, or ``compare`` several on the same loss.

Every dynamic runs on the clock ``t = k * lr``: discrete dynamics take
``steps`` (or ``t_end``), continuous ones ``t_end`` (or ``steps``) and ``dt``
(default ``lr / 10``; ``dt="auto"`` picks it for a stated bias, see
:mod:`sdesim.integrators.bias`). ``record_every=k`` records steps ``0, k, 2k, ...``
and always the final state; ``record_dt=tau`` records at the times ``0, tau, 2 tau, ...``
instead, each at the nearest step when ``tau`` is not a multiple of the step
(``result.t`` holds the times actually recorded, within half a step of
``j * tau``). Runs proceed in segments, which bounds memory to what is recorded,
reports progress on long runs and never changes a random number.

After an SDE run the sharpest curvature met by the recorded states of its second
half is set against ``dt``: when the scheme's stationary variance along it is off by more than
:data:`STEP_BIAS_WARNING` (5%), a :class:`~sdesim.errors.StepSizeWarning` says by
how much.
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np

from sdesim.backends import get_backend
from sdesim.backends.base import array_namespace
from sdesim.dynamics import GD, GradientFlow, ModifiedFlow, SGDDiffusion
from sdesim.errors import ConfigError, DivergenceError, DivergenceWarning, StepSizeWarning, UnsupportedError
from sdesim.integrators import bias
from sdesim.losses.base import as_loss
from sdesim.plan import check_count, initial_states, resolve
from sdesim.result import Result

DETERMINISTIC = (GD, GradientFlow, ModifiedFlow)
STEP_BIAS_WARNING = 0.05
"""Relative stationary-variance bias above which an SDE run warns (:class:`StepSizeWarning`)."""


def simulate(loss, dynamic, w0, n_particles=1, steps=None, t_end=None, dt=None, record_every=1,
             backend="numba", seed=0, integrator=None, bound=1e8, on_divergence="warn",
             progress=None, segment_steps=None, reducers=(), keep="all", record_dt=None,
             dt_tol=0.01, device_arrays=False, dtype="float64") -> Result:
    """Simulate an ensemble of ``n_particles`` under ``dynamic`` on ``loss``.

    Parameters
    ----------
    loss : Loss, FiniteSumLoss, QuadraticModel or a catalog landscape
    dynamic : GD, SGD, GradientFlow, ModifiedFlow or SGDDiffusion
    w0 : (dim,) or (n_particles, dim) array
        Initial state(s).
    steps, t_end : see the module docstring.
    dt : float or "auto"
        Step of a continuous dynamic (default ``lr / 10``). ``"auto"`` (SDEs): the
        largest step, at most ``lr / 10``, whose stationary-variance bias on the sharpest
        curvature at the initial states is within ``dt_tol``
        (:func:`sdesim.integrators.bias.stable_step`).
    record_every : int
        Record every ``k``-th step (and the final state).
    record_dt : float, optional
        Record at the times ``0, record_dt, 2 record_dt, ...`` (and the final state):
        one clock for every lens (see the module docstring).
    backend : str
        A registered backend (:data:`sdesim.backends.REGISTRY`): ``"numba"`` (compiled) or
        ``"numpy"`` (the reference). ``result.metadata["stepper"]`` says how it ran.
    seed : int
        Key of the counter-based random streams: same seed, same numbers on any
        backend segmentation or thread count.
    integrator : str, optional
        SDE scheme: ``"euler_maruyama"`` (default), ``"heun"``, ``"weak2"``,
        ``"milstein"``, ``"exact_ou"`` (quadratic models). Flows: ``"dopri5"`` (adaptive,
        default) or ``"rk4"`` (classical Runge-Kutta on the fixed step ``dt``).
    bound : float
        A particle with a non-finite state or ``|w_i| > bound`` is stopped.
    on_divergence : {"warn", "raise", "ignore"}
    progress : bool, optional
        Show a progress bar (tqdm's when installed, a notebook widget in Jupyter; else a
        line on stderr). Default: only for runs longer than a few seconds.
    reducers : sequence of Reducer
        Streaming statistics fed with every recorded state (:mod:`sdesim.reducers`: moments,
        histograms, basin counts; first-passage times in :mod:`sdesim.analysis.escape`);
        their outputs land in ``result.reduced[reducer.name]``.
    keep : {"all", "final"}
        Keep every recorded state, or only the final one (bounded memory with reducers: about
        twice the ensemble, see ``docs/performance.md``).
    device_arrays : bool
        With a device backend (``engine.xp`` not NumPy, e.g. CuPy): leave ``result.w`` and
        ``result.loss`` in device arrays instead of copying them to the host (the default).
        ``result.t``, ``diverged_at`` and the reducers' outputs are host arrays either way.
    dtype : {"float64", "float32"}
        Floating type of the states and their arithmetic; float32 runs on ``backend="cupy"``
        only (``docs/gpu.md``: its accuracy). Records are returned as float64 either way.

    Returns
    -------
    Result
        ``t (T,)``, ``w (T, N, dim)``, ``loss (T, N)``.
    """
    if on_divergence not in ("warn", "raise", "ignore"):
        raise ConfigError(f"on_divergence must be 'warn', 'raise' or 'ignore', got {on_divergence!r}")
    if keep not in ("all", "final"):
        raise ConfigError(f"keep must be 'all' or 'final', got {keep!r}")
    if not isinstance(device_arrays, (bool, np.bool_)):
        raise ConfigError(f"device_arrays must be True or False, got {device_arrays!r}")
    record_every = check_count("record_every", record_every, minimum=1)
    if segment_steps is not None:
        segment_steps = check_count("segment_steps", segment_steps, minimum=1)
    if isinstance(dt, str):
        dt = _auto_step(loss, dynamic, w0, n_particles, integrator, dt, dt_tol)
        if record_dt is not None:            # a step that divides record_dt, still within dt_tol
            dt = common_step(dynamic, record_dt, dt)
    plan = resolve(loss, dynamic, n_particles, steps, t_end, dt, seed, integrator, bound, dtype)
    loss, n_steps, dt = plan.loss, plan.n_steps, plan.dt
    engine = get_backend(backend)
    support = engine.support(plan)
    if support.level == "unsupported":
        raise UnsupportedError(f"backend {backend!r} cannot run {plan.label}: {support.reason}")
    record = _record_steps(n_steps, dt, record_every, record_dt)
    kept = record if keep == "all" else np.array([n_steps])
    # the backend takes the initial states over: no copy of them stays here
    state = engine.start(plan, initial_states(w0, plan.n_particles, plan.dim, loss.names))
    host = _identity if device_arrays else engine.to_host
    out = engine.xp if device_arrays else np
    w = out.empty((len(record), plan.n_particles, plan.dim)) if keep == "all" else None      # float64
    ask = keep == "all" or bool(reducers)                 # else no record is needed before the last
    # a segment holds at most ~5e6 recorded numbers (40 MB) and ~5e8 particle-steps (progress)
    per_record = max(plan.n_particles * plan.dim, 1)
    seg = segment_steps or max(1, min(n_steps, record_every * max(1, 5_000_000 // per_record),
                                      max(1, 500_000_000 // per_record)))
    bar = Progress(plan.label, n_steps, progress)
    filled = 0
    for k0 in range(0, n_steps, seg):
        k1 = min(n_steps, k0 + seg)
        steps_here = record[(record >= k0) & (record < k1)] if ask else record[:0]
        segment = engine.advance(plan, state, k0, k1, steps_here)
        if len(segment):
            segment = engine.xp.stack(segment) if isinstance(segment, list) else segment
            feed(reducers, steps_here * dt, segment, engine)
            if keep == "all":
                w[filled:filled + len(segment)] = host(segment)
                filled += len(segment)
        del segment                         # before the next segment's records are made
        bar.update(k1)
    bar.close()
    # a copy only where the backend keeps W.T contiguous, or W in float32
    final = engine.xp.ascontiguousarray(state.W, dtype=np.float64)
    feed(reducers, np.array([n_steps * dt]), final[None], engine)
    if keep == "all":
        w[-1] = host(final)
    else:                                   # the final state itself on a NumPy backend: no copy
        w = host(final)[None]
    diverged_at = engine.to_host(state.diverged_at)
    del state, final
    report_divergence(plan, diverged_at, on_divergence)
    times = kept * dt
    ok = finite_rows(w, engine.to_host)
    if plan.family == "sde":
        check_step(plan, w, ok, engine.to_host)
    values = record_losses(loss, w, ok, times, engine.to_host)
    if device_arrays:
        values = engine.xp.asarray(values)
    metadata = {"label": dynamic.label, "dynamic": dynamic.describe(), "loss": repr(loss),
                "variables": list(loss.names), "n_particles": plan.n_particles, "n_steps": n_steps,
                "dt": dt, "record_every": int(record_every), "record_dt": record_dt, "backend": backend,
                "seed": plan.seed,
                "integrator": integrator, "bound": bound, "stepper": support.describe(),
                "w0": np.asarray(w0, dtype=float).tolist() if np.ndim(w0) == 1
                else "per-particle"}
    return Result(t=times, w=w, loss=values, metadata=metadata, diverged_at=diverged_at,
                  reduced={r.name: r.result() for r in reducers})


class Progress:
    """Steps done of a run, shown once it has taken a few seconds (``show=None``), always (``True``) or never.

    A ``tqdm.auto`` bar (a widget in notebooks) when tqdm is installed, else a line on stderr.
    """

    AFTER = 5.0

    def __init__(self, label, total, show=None):
        self.label, self.total, self.show = label, total, show
        self.start = time.perf_counter()
        self.bar = None
        self.done = 0

    def update(self, done):
        elapsed = time.perf_counter() - self.start
        if self.bar is None and (self.show or (self.show is None and elapsed > self.AFTER and done < self.total)):
            try:
                from tqdm.auto import tqdm
                self.bar = tqdm(total=self.total, desc=self.label, unit="step", initial=self.done)
            except ImportError:
                self.bar = False
        if self.bar:
            self.bar.update(done - self.done)
        elif self.bar is False:
            print(f"\r{self.label}: step {done}/{self.total} ({elapsed:.1f} s)", end="", file=sys.stderr)
        self.done = done

    def close(self):
        if self.bar:
            self.bar.close()
        elif self.bar is False:
            print(file=sys.stderr)


def _record_steps(n_steps, dt, record_every, record_dt):
    """Steps to record: every ``record_every``-th, or the nearest to ``0, record_dt, ...``; and the last."""
    if record_dt is None:
        steps = np.arange(0, n_steps + 1, int(record_every))
    else:
        if record_every != 1:
            raise ConfigError("give record_every or record_dt, not both")
        if not (np.isscalar(record_dt) and np.isfinite(record_dt) and record_dt > 0):
            raise ConfigError(f"record_dt must be a positive number, got {record_dt!r}")
        times = np.arange(0.0, n_steps * dt * (1 + 1e-12), record_dt)
        steps = np.rint(times / dt).astype(np.int64)
    return np.unique(np.append(steps, n_steps))


def _auto_step(loss, dynamic, w0, n_particles, integrator, dt, tol):
    """``dt="auto"``: the largest step (at most ``lr / 10``) within ``tol`` on the curvature at ``w0``."""
    from sdesim import integrators
    if dt != "auto":
        raise ConfigError(f"dt must be a positive number or 'auto', got {dt!r}")
    if not isinstance(dynamic, SGDDiffusion):
        raise ConfigError(f"dt='auto' picks the step of an SDE; {dynamic.label} has none to pick")
    if not 0 < tol < 1:
        raise ConfigError(f"dt_tol must lie in (0, 1), got {tol!r}")
    loss = as_loss(loss)
    W0 = initial_states(w0, n_particles, loss.dim, loss.names)
    h = bias.top_curvature(loss, W0)
    step = bias.stable_step(integrators.get("euler_maruyama" if integrator is None else integrator), h, tol)
    return min(step, dynamic.lr / 10)


def common_step(dynamic, record_dt, dt=None, t_end=None) -> float:
    """The largest step ``<= dt`` (default ``lr / 10``, or ``t_end / 1000``) that divides ``record_dt``."""
    base = dt if dt is not None else (dynamic.lr / 10 if hasattr(dynamic, "lr") else t_end / 1000)
    return record_dt / np.ceil(record_dt / base * (1 - 1e-12))


def _identity(a):
    return a


def feed(reducers, t, block, engine):
    """Fold records ``block (R, N, dim)`` (of ``engine.xp``) at times ``t`` into the reducers: as they are
    for a reducer on any array module (``Reducer.any_array``), else one host copy for the rest."""
    on_host = None
    for reducer in reducers:
        if reducer.any_array or engine.xp is np:
            reducer.update(t, block)
            continue
        if on_host is None:
            on_host = engine.to_host(block)
        reducer.update(t, on_host)


CURVATURE_POINTS = 256
"""States at which :func:`check_step` takes the curvature."""
BLOCK = 1 << 16
"""States per block of the post-processing of records (bounds its temporaries to a few ``BLOCK * dim``)."""


def finite_rows(w, to_host) -> np.ndarray:
    """``(T, N)`` host mask of the finite recorded states, in blocks of :data:`BLOCK` states across records."""
    xp = array_namespace(w)
    states = w.reshape(-1, w.shape[2])
    ok = np.empty(len(states), bool)
    for lo in range(0, len(states), BLOCK):
        ok[lo:lo + BLOCK] = to_host(xp.isfinite(states[lo:lo + BLOCK]).all(axis=1))
    return ok.reshape(w.shape[:2])


def nth_true(masks, ranks):
    """``(which mask, index in it)`` of the ``ranks``-th (ascending) true entries of the concatenated ``masks``,
    block by block (no index array of every true entry)."""
    which, where = np.empty(len(ranks), np.int64), np.empty(len(ranks), np.int64)
    seen = j = 0
    for m, mask in enumerate(masks):
        for lo in range(0, len(mask), BLOCK):
            idx = np.flatnonzero(mask[lo:lo + BLOCK])
            while j < len(ranks) and ranks[j] < seen + len(idx):
                which[j], where[j] = m, lo + idx[ranks[j] - seen]
                j += 1
            seen += len(idx)
    return which, where


def record_losses(loss, w, ok, times, to_host) -> np.ndarray:
    """``(T, N)`` loss at the finite recorded states (NaN elsewhere), in blocks of at most :data:`BLOCK` states."""
    values = np.full(ok.shape, np.nan)
    if not loss.time_parameters and isinstance(w, np.ndarray) and ok.sum() <= BLOCK:
        if ok.any():
            values[ok] = loss.value(w[ok])                  # one call for every record
        return values
    if loss.time_parameters:                               # the loss changes with t: record by record
        for i, t in enumerate(times):
            for lo in range(0, w.shape[1], BLOCK):
                m = ok[i, lo:lo + BLOCK]
                if m.any():
                    values[i, lo:lo + BLOCK][m] = loss.value(to_host(w[i, lo:lo + BLOCK])[m], t)
        return values
    states, finite, flat = w.reshape(-1, w.shape[2]), ok.reshape(-1), values.reshape(-1)
    for lo in range(0, len(states), BLOCK):                # blocks across records
        m = finite[lo:lo + BLOCK]
        if m.any():
            flat[lo:lo + BLOCK][m] = loss.value(to_host(states[lo:lo + BLOCK])[m])
    return values


def check_step(plan, w, ok, to_host):
    """Warn when the SDE step is coarse for the sharpest curvature met in the second half of the records ``w``
    (where the ensemble has relaxed: the stationary spread is what the bias distorts). ``ok``: the finite
    records; the curvature is taken at the states :func:`~sdesim.integrators.bias.top_curvature` would pick,
    gathered here without copying the records."""
    picked = np.arange(len(w))[len(w) // 2:]
    picked = picked[:: max(1, len(picked) // 8)]
    finite = sum(int(ok[i].sum()) for i in picked)
    ranks = np.linspace(0, finite - 1, min(finite, CURVATURE_POINTS)).astype(int)
    records, particles = nth_true([ok[i] for i in picked], ranks)
    xp = array_namespace(w)
    states = to_host(w[xp.asarray(picked[records]), xp.asarray(particles)])
    h = bias.top_curvature(plan.loss, states, plan.n_steps * plan.dt, max_points=CURVATURE_POINTS)
    if not h > 0:                   # no stationary spread along a flat or unstable direction
        return
    ratio = float(bias.variance_ratio(plan.integrator, h * plan.dt)[0])
    if abs(ratio - 1.0) > STEP_BIAS_WARNING:
        name = plan.integrator.name
        off = (f"{name} is unstable along it" if not np.isfinite(ratio)
               else f"{name}'s stationary variance along it is {100 * (ratio - 1):+.0f}% off the SDE's")
        heun = plan.integrator.weak_order < 2 and plan.noise.additive
        remedy = "a smaller dt or dt='auto'" + (", or integrator='heun'" if heun else "")
        warnings.warn(f"{plan.label}: dt = {plan.dt:.3g} against the curvature where the particles sit, "
                      f"h = {h:.3g} (h dt = {h * plan.dt:.3g}): {off}. Use {remedy}.",
                      StepSizeWarning, stacklevel=3)


def report_divergence(plan, diverged_at, on_divergence):
    """Warn or raise, naming how many particles diverged and the first step."""
    bad = diverged_at >= 0
    if not bad.any() or on_divergence == "ignore":
        return
    first = int(diverged_at[bad].min())
    message = (f"{plan.label}: {int(bad.sum())} of {plan.n_particles} particles diverged "
               f"(non-finite or |w| > {plan.bound:g}), first at step {first} (t = {first * plan.dt:g})")
    if on_divergence == "raise":
        raise DivergenceError(message)
    warnings.warn(message, DivergenceWarning, stacklevel=3)


def compare(loss, dynamics, w0, n_particles=1, steps=None, t_end=None, **kwargs) -> list[Result]:
    """Run several dynamics on one loss from the same start and seed, on the same clock.

    ``t_end`` (or ``steps`` of the first discrete dynamic times its ``lr``) sets the
    common time span; each dynamic gets its own step count. Deterministic dynamics
    (GD, flows) run one particle from a single start ``w0`` (all ``n_particles`` would
    be identical; ``Result.broadcast`` repeats it where ``N`` copies are needed). With
    ``record_dt`` every lens records at the same times: continuous lenses take the
    largest step ``<= dt`` (default ``lr / 10``) that divides ``record_dt``; discrete
    lenses record at their nearest step (exact when ``record_dt`` is a multiple of ``lr``).
    """
    if t_end is None:
        if steps is None:
            raise ConfigError("give t_end (or steps)")
        first = next((d for d in dynamics if not d.continuous), None)
        if first is None:
            raise ConfigError("give t_end: none of the dynamics is discrete")
        t_end = steps * first.lr
    dt = kwargs.pop("dt", None)
    out = []
    for d in dynamics:
        n, step = lens_settings(d, w0, n_particles, dt, kwargs.get("record_dt"), t_end)
        out.append(simulate(loss, d, w0, n, t_end=t_end, dt=step, **kwargs))
    return out


def lens_settings(dynamic, w0, n_particles, dt=None, record_dt=None, t_end=None):
    """``(n_particles, dt)`` of one lens among several on one clock (``compare``, experiment files).

    A deterministic lens from a single start runs one particle; ``dt`` applies to continuous
    lenses only (``"auto"`` to SDEs only: flows take the default); with ``record_dt`` a
    continuous lens takes the largest step ``<= dt`` that divides it.
    """
    n = 1 if np.ndim(w0) <= 1 and isinstance(dynamic, DETERMINISTIC) else n_particles
    if not dynamic.continuous or (dt == "auto" and not isinstance(dynamic, SGDDiffusion)):
        dt = None
    if dynamic.continuous and record_dt is not None and dt != "auto":
        dt = common_step(dynamic, record_dt, dt, t_end)
    return n, dt
