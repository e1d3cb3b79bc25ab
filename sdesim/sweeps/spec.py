"""A sweep resolved once: its axes, seeds and points, every point built and validated.

``Spec`` turns ``(loss, dynamic, over, seeds, fixed, settings)`` into a grid of
points. Each point is one ``simulate`` call: its loss (with any swept loss parameter
bound), its dynamic (swept and fixed fields), its run settings and its seed. Building
the spec builds and resolves every point (:func:`sdesim.plan.resolve`), so a bad
name, value or combination raises a :class:`~sdesim.errors.ConfigError` naming the
point before anything runs.

Swept names are of three kinds:

- a field of the dynamic (``lr``, ``batch_size``, ``momentum``, ``noise``, ...), or a
  parameter of a function returning the dynamic;
- a loss parameter: a catalog landscape's parameter (``c`` of ``tilted_double_well_1d``:
  one compilation per value, as the value is part of the expression), a parameter of a
  ``Loss`` bound to a callable of ``t`` (e.g. :class:`Constant`: the kernels take it as
  an argument, one compilation for every value), or a parameter of a function returning
  the loss;
- a run setting: ``n_particles``, ``steps``, ``t_end``, ``dt``.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import typing
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from sdesim.errors import ConfigError, SdesimError, UnsupportedError

RUN_SETTINGS = ("n_particles", "steps", "t_end", "dt")
#: ``record_every`` of runs that need only their final state (records step 0 and the last).
FINAL_ONLY = 2**62
SCALAR_TYPES = (bool, int, float, str)


class Constant:
    """A loss parameter held at ``value`` at every time ``t``.

    Binding a parameter to a callable keeps it a symbol of the compiled kernels
    (an argument, not a number folded into the expression): ``sd.Loss("(x**2 - 1)**2
    + c*x", c=Constant(0.25))`` compiles once however many values of ``c`` a sweep runs.
    """

    def __init__(self, value):
        self.value = float(value)

    def __call__(self, t):
        return np.full(np.shape(t), self.value) if np.ndim(t) else self.value

    def __repr__(self):
        return f"Constant({self.value!r})"


@dataclass(frozen=True)
class Axis:
    """One dimension of the grid: a name and its values, or several names zipped."""

    names: tuple
    values: tuple          # one tuple of values per name, all of the same length

    @property
    def dim(self) -> str:
        return self.names[0] if len(self.names) == 1 else "_".join(self.names)

    def __len__(self):
        return len(self.values[0])


@dataclass
class Point:
    """One grid point and seed: what ``simulate`` runs, and the coordinates it is stored at."""

    index: int
    position: tuple
    values: dict
    seed: int
    loss: object
    dynamic: object
    settings: dict
    w0: object

    def where(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in {**self.values, "seed": self.seed}.items()) or "the point"


@dataclass(eq=False)
class Spec:
    """The resolved sweep (module docstring): axes, seeds, fixed values, observables, settings."""

    loss: object
    dynamic: object
    axes: tuple
    seeds: tuple
    fixed: dict
    w0: object
    settings: dict
    observables: tuple
    backend: str = "numba"
    integrator: str | None = None
    bound: float = 1e8
    _losses: dict = field(default_factory=dict, repr=False)

    def __getstate__(self):
        # built losses hold compiled kernels: every process builds (and caches) its own
        return {**self.__dict__, "_losses": {}}

    # --- the grid -------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        """Sizes of the grid's dimensions: one per axis, then the seeds."""
        return tuple(len(a) for a in self.axes) + (len(self.seeds),)

    @property
    def dims(self) -> tuple:
        return tuple(a.dim for a in self.axes) + ("seed",)

    @property
    def n_points(self) -> int:
        return int(np.prod(self.shape))

    @property
    def swept(self) -> tuple:
        return tuple(n for a in self.axes for n in a.names)

    def coords(self) -> dict:
        """Coordinates of the grid: ``{name: (dim, values)}`` (zipped names share their dimension)."""
        out = {}
        for a in self.axes:
            for name, values in zip(a.names, a.values):
                out[name] = (a.dim, _array(values))
        out["seed"] = ("seed", np.array(self.seeds, dtype=np.int64))
        return out

    # --- the points -----------------------------------------------------------------
    def point(self, index: int) -> Point:
        """The point at flat index ``index`` (C order over ``shape``)."""
        position = tuple(int(i) for i in np.unravel_index(index, self.shape))
        values = {}
        for a, i in zip(self.axes, position):
            for name, vals in zip(a.names, a.values):
                values[name] = vals[i]
        merged = {**self.fixed, **values}
        kinds = self.kinds
        loss = self._loss({k: v for k, v in merged.items() if kinds[k] == "loss"})
        dyn = _build_dynamic(self.dynamic, {k: v for k, v in merged.items() if kinds[k] == "dynamic"})
        settings = {**self.settings, **{k: v for k, v in merged.items() if kinds[k] == "run"}}
        return Point(index, position, values, int(self.seeds[position[-1]]), loss, dyn, settings, self.w0)

    def where(self, index: int) -> str:
        """``"lr=0.1, batch_size=4, seed=0"``: the coordinates of a point, for messages."""
        position = np.unravel_index(index, self.shape)
        values = {n: vals[i] for a, i in zip(self.axes, position) for n, vals in zip(a.names, a.values)}
        return ", ".join(f"{k}={v!r}" for k, v in {**values, "seed": self.seeds[position[-1]]}.items())

    @cached_property
    def kinds(self) -> dict:
        """``{name: "run" | "loss" | "dynamic"}`` for every name the sweep may set."""
        return _kinds(self.loss, self.dynamic)

    def _loss(self, params: dict):
        key = tuple(sorted(params.items()))
        if key not in self._losses:
            self._losses[key] = build_loss(self.loss, params)
        return self._losses[key]

    # --- checking and running ------------------------------------------------------
    def validate(self):
        """Build and resolve every grid point, check the observables; return the output :class:`Layout`."""
        from sdesim.backends import get_backend
        from sdesim.plan import initial_states, resolve
        from sdesim.sweeps.store import Layout

        engine = get_backend(self.backend)
        cadences = {o.record_every for o in self.observables if o.record_every is not None}
        if len(cadences) > 1:
            raise ConfigError(f"the observables record at different intervals {sorted(cadences)}: "
                              "give them the same record_every")
        variables = {}
        for obs in self.observables:
            for name, dims in obs.variables.items():
                if name in variables or name in self.dims or name in self.swept:
                    raise ConfigError(f"two observables, or an observable and a swept name, are both "
                                      f"called {name!r}")
                variables[name] = tuple(dims)
        own = {d for dims in variables.values() for d in dims}
        clash = own & (set(self.dims) | set(self.swept))
        if clash:
            raise ConfigError(f"{sorted(clash)} name both a swept name and an observable's dimension")
        n_seeds, dims = len(self.seeds), None
        for g in range(self.n_points // n_seeds):
            try:
                point = self.point(g * n_seeds)
                s = point.settings
                plan = resolve(point.loss, point.dynamic, s.get("n_particles", 1), s.get("steps"),
                               s.get("t_end"), s.get("dt"), point.seed, self.integrator, self.bound)
                initial_states(self.w0, plan.n_particles, plan.dim, plan.loss.names)
                support = engine.support(plan)
                if support.level == "unsupported":
                    raise UnsupportedError(f"backend {self.backend!r} cannot run {plan.label}: {support.reason}")
                here = {}
                for obs in self.observables:
                    obs.check(point, plan)
                    here.update(obs.dims(point, plan))
            except SdesimError as exc:
                raise type(exc)(f"at {self.where(g * n_seeds)}: {exc}") from None
            if dims is None:
                dims = here
                missing = own - set(dims)
                if missing:
                    raise ConfigError(f"no coordinates for the observables' dimensions {sorted(missing)}")
            else:
                for d, v in dims.items():
                    if d in here and not np.array_equal(np.asarray(v), np.asarray(here[d])):
                        raise ConfigError(f"the dimension {d!r} of the observables differs between points "
                                          f"({len(v)} values at the first point, {len(here[d])} at "
                                          f"{point.where()}): keep it the same across the sweep")
        return Layout(self.dims, self.shape, self.coords(), variables, dims)

    def recording(self) -> tuple:
        """``(record_every, keep)`` of every run: the observables' cadence, else the final state only."""
        every = [o.record_every for o in self.observables if o.record_every is not None]
        keep = "all" if any(o.keep == "all" for o in self.observables) else "final"
        return (every[0] if every else FINAL_ONLY), keep

    def run(self, index: int, warm: bool = False) -> dict:
        """Run the point at ``index`` and reduce it by every observable: ``{name: array}``.

        ``warm=True`` runs one particle for one step instead (compiling the kernels the point
        needs) and ignores what the observables make of it.
        """
        from sdesim.simulation import simulate

        point = self.point(index)
        s = dict(point.settings)
        w0 = self.w0
        if warm:
            s.update(n_particles=1, steps=1, t_end=None)
            w0 = np.asarray(w0, dtype=float)
            w0 = w0[:1] if w0.ndim == 2 else w0
        record_every, keep = self.recording()
        reducers = [r for obs in self.observables for r in obs.reducers(point)]
        result = simulate(point.loss, point.dynamic, w0, n_particles=s.get("n_particles", 1),
                          steps=s.get("steps"), t_end=s.get("t_end"), dt=s.get("dt"),
                          record_every=record_every, backend=self.backend, seed=point.seed,
                          integrator=self.integrator, bound=self.bound, on_divergence="ignore",
                          progress=False, reducers=reducers, keep=keep)
        out = {}
        for obs in self.observables:
            if warm:
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        obs(result, point)
                except (SdesimError, ArithmeticError, ValueError):
                    pass
                continue
            values = obs(result, point)
            out.update({name: values[name] for name in obs.variables})
        return out

    def warm(self, indices, after=None):
        """Run one particle for one step of each distinct kernel among ``indices`` (those of the point
        ``after``, already run, excepted): compiled here once, workers load them from the cache."""
        done = set() if after is None else {self.kernel_key(after)}
        for i in indices:
            key = self.kernel_key(i)
            if key not in done:
                done.add(key)
                self.run(i, warm=True)

    def kernel_key(self, index: int) -> tuple:
        """What decides the compiled kernels of a point: its loss and the structure of its dynamic."""
        point = self.point(index)
        dyn = point.dynamic
        return (id(point.loss), type(dyn).__name__, point.settings.get("dt") is None,
                tuple((f.name, _structure(getattr(dyn, f.name))) for f in dataclasses.fields(dyn)))

    # --- description ----------------------------------------------------------------
    def describe(self) -> dict:
        """Everything that decides the numbers (enough to rerun the sweep), as plain JSON types."""
        over = {(a.names[0] if len(a.names) == 1 else ",".join(a.names)):
                (list(a.values[0]) if len(a.names) == 1 else [list(v) for v in zip(*a.values)])
                for a in self.axes}
        return json.loads(json.dumps({
            "loss": describe_loss(self.loss), "dynamic": describe_dynamic(self.dynamic), "over": over,
            "seeds": list(self.seeds), "fixed": self.fixed,
            "w0": np.asarray(self.w0, dtype=float).tolist(), **self.settings, "backend": self.backend,
            "integrator": self.integrator, "bound": self.bound,
            "observe": [o.describe() for o in self.observables]}, default=_jsonable))


# --- building ----------------------------------------------------------------------------
def build_spec(loss, dynamic, over, seeds, fixed, w0, settings, observables, backend, integrator,
               bound) -> Spec:
    """Check the names and values of a sweep and build its :class:`Spec` (module docstring)."""
    axes = parse_over(over)
    if fixed is not None and not (isinstance(fixed, Mapping) and all(isinstance(k, str) for k in fixed)):
        raise ConfigError(f"fixed must be a mapping of names to values, got {fixed!r}")
    fixed = dict(fixed or {})
    swept = [n for a in axes for n in a.names]
    allowed = _kinds(loss, dynamic, check=set(swept) | set(fixed))
    for name in swept + list(fixed):
        if name == "seed":
            raise ConfigError("do not sweep 'seed' by name: give seeds= (a count or a list of seeds)")
        if name not in allowed:
            raise ConfigError(f"unknown name {name!r} to sweep or fix; allowed: fields of the dynamic "
                              f"{sorted(dynamic_names(dynamic))}, loss parameters {sorted(loss_names(loss))}, "
                              f"run settings {list(RUN_SETTINGS)}")
    twice = sorted({n for n in swept if swept.count(n) > 1} | (set(swept) & set(fixed)))
    if twice:
        raise ConfigError(f"{', '.join(map(repr, twice))} swept twice (or both swept and fixed): "
                          "give each name once")
    run_given = {k for k, v in settings.items() if v is not None}
    clash = sorted((set(swept) | set(fixed)) & run_given)
    if clash:
        raise ConfigError(f"{', '.join(map(repr, clash))} given both as a setting and in over/fixed: give it once")
    _check_loss_params(loss, [n for n in swept if allowed[n] == "loss"])
    steps = [settings.get("dt"), fixed.get("dt")] + [v for a in axes for n, vals in zip(a.names, a.values)
                                                     if n == "dt" for v in vals]
    if any(isinstance(v, str) for v in steps):
        raise ConfigError("dt='auto' picks each run's step from the curvature at its start; a sweep needs the "
                          "same clock rule at every point: give dt as a number (or sweep it)")
    axes = tuple(_coerce(a, dynamic) for a in axes)
    return Spec(loss, dynamic, axes, parse_seeds(seeds), fixed, w0, dict(settings), tuple(observables),
                backend, integrator, bound)


def _kinds(loss, dynamic, check=()) -> dict:
    """``{name: "dynamic" | "loss" | "run"}``; a name of ``check`` of two kinds raises (it is ambiguous)."""
    out = {}
    for kind, names in (("dynamic", dynamic_names(dynamic)), ("loss", loss_names(loss)), ("run", RUN_SETTINGS)):
        for name in names:
            if name in out and name in check:
                raise ConfigError(f"{name!r} names both a {out[name]} setting and a {kind} one: rename the "
                                  "loss parameter")
            out[name] = kind
    return out


def parse_over(over) -> tuple:
    """``over`` (a mapping, or a sequence of ``(name, values)`` pairs) as a tuple of :class:`Axis`.

    A tuple of names zips them: ``{("lr", "batch_size"): [(0.1, 4), (0.2, 8)]}`` is one dimension.
    """
    if over is None:
        return ()
    if isinstance(over, Mapping):
        items = list(over.items())
    else:
        try:
            items = [tuple(p) for p in over]
        except TypeError:
            raise ConfigError(f"over must be a mapping of names to lists of values, got {over!r}") from None
        if any(len(p) != 2 for p in items):
            raise ConfigError("over must be a mapping of names to lists, or a list of (name, values) pairs")
    axes = []
    for key, values in items:
        names = (key,) if isinstance(key, str) else tuple(key) if isinstance(key, tuple) else None
        if not names or not all(isinstance(n, str) and n for n in names):
            raise ConfigError(f"a swept name must be a string (or a tuple of strings, zipped), got {key!r}")
        label = names[0] if len(names) == 1 else f"{names}"
        if isinstance(values, (str, bytes, Mapping)) or np.ndim(values) == 0 and not _is_list(values):
            raise ConfigError(f"values of {label} must be a list, got {values!r}")
        values = list(values)
        if not values:
            raise ConfigError(f"the list of values of {label} is empty: give at least one value")
        if len(names) == 1:
            columns = [[_scalar(label, v) for v in values]]
        else:
            rows = []
            for v in values:
                if isinstance(v, (str, bytes)) or np.ndim(v) != 1 or len(v) != len(names):
                    raise ConfigError(f"each value of the zipped names {label} must be a tuple of "
                                      f"{len(names)} values, got {v!r}")
                rows.append(tuple(_scalar(label, x) for x in v))
            columns = [list(c) for c in zip(*rows)]
        keys = list(zip(*columns))
        repeated = [k for i, k in enumerate(keys) if k in keys[:i]]
        if repeated:
            shown = repeated[0][0] if len(names) == 1 else repeated[0]
            raise ConfigError(f"the values of {label} repeat ({shown!r}): each must appear once")
        axes.append(Axis(names, tuple(tuple(c) for c in columns)))
    return tuple(axes)


def _is_list(values):
    return isinstance(values, (list, tuple, range, np.ndarray))


def _scalar(label, v):
    if isinstance(v, np.generic):
        v = v.item()
    if not isinstance(v, SCALAR_TYPES):
        raise ConfigError(f"values of {label} must be numbers, strings or booleans, got {v!r}")
    if isinstance(v, float) and not np.isfinite(v):
        raise ConfigError(f"values of {label} must be finite, got {v!r}")
    return v


def parse_seeds(seeds) -> tuple:
    """``seeds`` (a count ``n``: seeds ``0..n-1``, or a list) as a tuple of distinct seeds."""
    if isinstance(seeds, bool):
        raise ConfigError(f"seeds must be a positive count or a list of seeds, got {seeds!r}")
    if np.ndim(seeds) == 0:
        if not (np.isreal(seeds) and float(seeds) == int(seeds) and seeds >= 1):
            raise ConfigError(f"seeds must be a positive count or a list of seeds, got {seeds!r}")
        return tuple(range(int(seeds)))
    out = list(seeds)
    if not out:
        raise ConfigError("the list of seeds is empty: give at least one seed")
    for s in out:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or not 0 <= s < 2**64:
            raise ConfigError(f"seeds must be integers in [0, 2**64), got {s!r}")
    if len(set(out)) != len(out):
        raise ConfigError(f"the seeds repeat: {out}")
    return tuple(int(s) for s in out)


def _coerce(axis, dynamic) -> Axis:
    """Integral floats become ints for integer fields (``batch_size``, ``steps``, ``n_particles``)."""
    ints = {"n_particles", "steps"} | integer_fields(dynamic)
    columns = []
    for name, values in zip(axis.names, axis.values):
        if name in ints and all(isinstance(v, (int, float)) and not isinstance(v, bool) and float(v).is_integer()
                                for v in values):
            values = tuple(int(v) for v in values)
            if len(axis.names) == 1 and len(set(values)) != len(values):
                raise ConfigError(f"the values of {name} repeat once rounded to integers: {list(values)}")
        columns.append(values)
    return Axis(axis.names, tuple(columns))


def _array(values):
    if all(isinstance(v, str) for v in values):
        return np.array(values, dtype=object)
    return np.array(values)


# --- dynamics ----------------------------------------------------------------------------
def _dynamic_kind(dynamic) -> str:
    from sdesim.dynamics.base import Dynamic
    if isinstance(dynamic, type) and issubclass(dynamic, Dynamic) and dataclasses.is_dataclass(dynamic):
        return "class"
    if isinstance(dynamic, Dynamic):
        return "instance"
    if callable(dynamic):
        return "factory"
    raise ConfigError(f"dynamic must be a dynamic class (sd.SGD), a dynamic (sd.SGD(0.1)) or a function "
                      f"returning one, got {dynamic!r}")


def dynamic_names(dynamic) -> tuple:
    """Names of a dynamic that can be swept: its fields, or the parameters of its factory."""
    kind = _dynamic_kind(dynamic)
    if kind in ("class", "instance"):
        return tuple(f.name for f in dataclasses.fields(dynamic))
    return _parameters(dynamic)


def integer_fields(dynamic) -> set:
    if _dynamic_kind(dynamic) == "factory":
        return set()
    cls = dynamic if isinstance(dynamic, type) else type(dynamic)
    hints = typing.get_type_hints(cls)
    return {n for n, h in hints.items() if h is int or int in typing.get_args(h)}


def _build_dynamic(dynamic, values):
    from sdesim.dynamics.base import Dynamic
    kind = _dynamic_kind(dynamic)
    try:
        if kind == "class":
            return dynamic(**values)
        if kind == "instance":
            return dataclasses.replace(dynamic, **values)
        out = dynamic(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"cannot build the dynamic from {values}: {exc}") from None
    if not isinstance(out, Dynamic):
        raise ConfigError(f"the dynamic factory {dynamic!r} returned {out!r}, not a dynamic")
    return out


def describe_dynamic(dynamic):
    kind = _dynamic_kind(dynamic)
    if kind == "class":
        return {"type": dynamic.__name__}
    if kind == "instance":
        return dynamic.describe()
    return {"factory": getattr(dynamic, "__qualname__", repr(dynamic))}


# --- losses -------------------------------------------------------------------------------
def _loss_kind(loss) -> str:
    from sdesim.losses.base import BaseLoss
    from sdesim.losses.catalog import Landscape
    if isinstance(loss, Landscape):
        return "landscape"
    if isinstance(loss, BaseLoss):
        return "loss"
    if callable(loss):
        return "factory"
    raise ConfigError(f"loss must be a loss, a catalog landscape or a function returning a loss, got {loss!r}")


def loss_names(loss) -> tuple:
    """Names of loss parameters a sweep can set."""
    kind = _loss_kind(loss)
    if kind == "landscape":
        from sdesim.losses import catalog
        builder = getattr(catalog, loss.name, None)
        return tuple(loss.params) if builder is None else _parameters(builder)
    if kind == "loss":
        return tuple(getattr(loss, "parameters", {}))
    return _parameters(loss)


def _check_loss_params(loss, names):
    if _loss_kind(loss) != "loss":
        return
    fixed = [n for n in names if not callable(loss.parameters[n])]
    if fixed:
        n = fixed[0]
        raise ConfigError(
            f"the loss parameter {n!r} was bound to the number {loss.parameters[n]} when the loss was built, "
            f"so it is compiled into the kernels and cannot be swept: bind it to a callable, e.g. "
            f"sd.Loss(expr, {n}=sdesim.sweeps.Constant({loss.parameters[n]})), or pass a function "
            f"returning the loss")


def build_loss(loss, params: dict):
    """The loss of a point: ``loss`` with ``params`` bound."""
    kind = _loss_kind(loss)
    if not params and kind != "factory":
        return loss
    try:
        if kind == "landscape":
            from sdesim.losses import catalog
            args = loss_names(loss)
            return catalog.get(loss.name, **{**{k: v for k, v in loss.params.items() if k in args}, **params})
        if kind == "loss":
            return loss.bind(**{k: Constant(v) for k, v in params.items()})
        out = loss(**params)
    except SdesimError:
        raise
    except (TypeError, ValueError, KeyError) as exc:
        raise ConfigError(f"cannot build the loss with {params}: {exc}") from None
    return out


def describe_loss(loss):
    kind = _loss_kind(loss)
    if kind == "landscape":
        return {"catalog": loss.name, "params": dict(loss.params)}
    if kind == "factory":
        return {"factory": getattr(loss, "__qualname__", repr(loss))}
    if loss.kind == "symbolic":
        return {"expr": str(loss.expr), "vars": list(loss.names),
                "params": {k: _callable_name(v) if callable(v) else v for k, v in loss.parameters.items()}}
    return {"repr": repr(loss)}


def _callable_name(f) -> str:
    """A callable as the configuration records it: the same in every process (no memory address)."""
    return repr(f) if isinstance(f, Constant) else getattr(f, "__qualname__", type(f).__name__)


def _parameters(fn) -> tuple:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return ()
    return tuple(p.name for p in sig.parameters.values()
                 if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


def _structure(v):
    """A value as far as compiled kernels care: zero or not, its text, the bytes of an array."""
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, (int, float)):
        return v == 0
    if isinstance(v, np.ndarray):
        return v.shape, v.tobytes()
    return type(v).__name__


def _jsonable(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if dataclasses.is_dataclass(obj):
        return {"type": type(obj).__name__, **dataclasses.asdict(obj)}
    return _callable_name(obj) if callable(obj) else repr(obj)

