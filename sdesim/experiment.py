"""Experiment files: a loss, dynamics, settings and outputs described in TOML.

``sdesim run experiment.toml`` validates the file (an unknown key, a bad value or
a value of the wrong type, such as a list where a number is expected, raises
`ExperimentError`, a `ConfigError`, naming the section and key), runs every
dynamic with ``simulate``, and writes the results, figures, a summary and the
resolved configuration to the output folder, so the run can be repeated exactly.

Sections: ``[loss]`` (one of ``catalog``, ``expr``, ``quadratic``), ``[simulation]``,
``[[dynamics]]`` (one table per lens), ``[fokker_planck]`` (the density of every
``SGDDiffusion`` lens on a grid: steady state with its current, and the evolution
from a Gaussian at ``w0`` next to the particles), ``[plots]``, ``[output]``, and
``[sweep]`` (lists become grids: one ``[[dynamics]]`` table run over every combination
and seed by :func:`sdesim.sweep`, see :mod:`sdesim.sweeps.experiment`). See
``examples/*.toml``, and ``docs/experiments.md``: every key with its type, default and
allowed values, rendered from the tables below by :func:`schema_markdown`
(``sdesim schema --out docs/experiments.md``).

The ``experiment.resolved.json`` a run writes is itself an experiment file: ``sdesim run
out/x/experiment.resolved.json --out out/y`` repeats the run.

The steady state of a lens with a learning-rate schedule is that of the same lens
at its constant base ``lr`` (where a warm-up ends, where a decay starts), which
exists even where the schedule's noise vanishes (``lr(0) = 0`` in a warm-up, the
end of a cosine decay to zero); ``steady_state_t = t`` freezes the schedule at
time ``t`` instead, e.g. the run's ``t_end``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import typing
from pathlib import Path

import numpy as np

from sdesim.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class ExperimentError(ConfigError):
    """An experiment file is invalid: names the section and the key."""


SECTIONS = {
    "loss": {"catalog", "expr", "vars", "params", "quadratic"},
    "simulation": {"w0", "n_particles", "steps", "t_end", "dt", "dt_tol", "record_every", "record_dt",
                   "backend", "seed", "integrator", "bound"},
    "plots": {"trajectories", "loss_curves", "bounds", "format", "plane", "phase_diagram"},
    "output": {"folder"},
    "fokker_planck": {"bounds", "shape", "steady_state", "steady_state_t", "evolve", "initial_std", "dt",
                      "method"},
    # besides these options, every key of [sweep] names something swept (sdesim.sweeps.experiment)
    "sweep": {"seeds", "executor", "workers", "store", "observe", "numba_threads"},
}
#: The type of every key holding one value (the dynamics' and schedules' come from their fields).
SCALARS = {
    "loss": {"catalog": str, "expr": str, "quadratic": str},
    "simulation": {"n_particles": int, "steps": int, "t_end": float, "dt_tol": float, "record_every": int,
                   "record_dt": float, "backend": str, "seed": int, "integrator": str, "bound": float},
    "plots": {"trajectories": bool, "loss_curves": bool, "format": str},
    "output": {"folder": str},
    "fokker_planck": {"steady_state": bool, "steady_state_t": float, "evolve": bool, "initial_std": float,
                      "dt": float, "method": str},
    "sweep": {"executor": str, "store": str, "workers": int, "numba_threads": int},
}
#: Keys holding arrays of numbers: allowed numbers of dimensions, whether the rows are pairs, a description.
ARRAYS = {
    ("simulation", "w0"): ((0, 1, 2), False, "a number, a list of numbers or a list of such lists"),
    ("plots", "bounds"): ((2,), True, "a list of [lo, hi] pairs"),
    ("fokker_planck", "bounds"): ((2,), True, "a list of [lo, hi] pairs"),
    ("fokker_planck", "shape"): ((1,), False, "a list of cell counts"),
}
_KIND_NAMES = {float: "a number", int: "an integer", bool: "true or false", str: "a string"}
DYNAMICS = ("GD", "SGD", "GradientFlow", "ModifiedFlow", "SGDDiffusion")
SCHEDULES = ("Constant", "Step", "Cosine", "Cyclic", "WarmUp")
#: Keys of other types, checked by ``_check_values``: the type as the reference page states it.
OTHER_TYPES = {("loss", "params"): "table of numbers", ("loss", "vars"): "list of strings",
               ("plots", "plane"): '"hessian" or a list of two variable names',
               ("simulation", "dt"): 'number or "auto"',
               ("plots", "phase_diagram"): "table", ("sweep", "seeds"): "integer or list of integers",
               ("sweep", "observe"): "list of tables"}
#: Defaults of the keys outside ``[simulation]`` (whose defaults are ``simulate``'s); the others' are in KEYS.
DEFAULTS = {"plots": {"trajectories": True, "loss_curves": True, "format": "png"},
            "fokker_planck": {"steady_state": True, "evolve": True, "method": "tr-bdf2"}}


def _choices(section, key):
    """The allowed values of a string key, or ``None`` for any (read from the registries)."""
    if (section, key) == ("loss", "catalog"):
        from sdesim.losses import catalog
        return catalog.names()
    if (section, key) == ("simulation", "backend"):
        from sdesim.backends import REGISTRY
        return sorted(REGISTRY)
    if (section, key) == ("simulation", "integrator"):
        from sdesim.integrators import INTEGRATORS
        return sorted(INTEGRATORS)
    if (section, key) == ("plots", "format"):
        from matplotlib.backend_bases import FigureCanvasBase
        return sorted(FigureCanvasBase.get_supported_filetypes())
    if (section, key) == ("fokker_planck", "method"):
        from sdesim.fokker_planck.evolve import METHODS
        return list(METHODS)
    return None


#: What each section and key holds, for the reference page (every key of SECTIONS needs a line).
SECTION_DOCS = {
    "loss": "The landscape: exactly one of `catalog`, `expr`, `quadratic`.",
    "simulation": "Settings of `sd.simulate`, shared by every lens.",
    "dynamics": "One `[[dynamics]]` table per lens: `type` and the fields of that dynamic.",
    "plots": "Figures written beside the results.",
    "output": "Where the results go.",
    "fokker_planck": "The density of every `SGDDiffusion` lens on a grid: its steady state with the probability "
                     "current, and its evolution from a Gaussian at `w0` next to the particles.",
    "sweep": "Run the one `[[dynamics]]` table over a grid (`sd.sweep`, [sweeps](sweeps.md)): besides the options "
             "below, every key names what is swept (a field of the dynamic, a loss parameter, `n_particles`, "
             "`steps`, `t_end`, `dt`) and holds a list of values or `{ geomspace = [start, stop, num] }` "
             "(or `linspace`); lists become grids.",
}
KEYS = {
    "loss": {
        "catalog": "a named landscape of `sd.catalog` (its plotting bounds come with it)",
        "expr": 'a formula in the variables, e.g. `"(x**2 - 1)**2 + 2*y**2"`',
        "vars": "the order of the formula's variables (default: sorted by name)",
        "params": "the formula's parameters, or the catalog landscape's arguments, e.g. `{ c = 0.25 }`",
        "quadratic": "path of a saved `QuadraticModel` (`.npz`, e.g. written by `sdesim extract`)",
    },
    "simulation": {
        "w0": "required: the start, one point for every particle or one row per particle",
        "n_particles": "number of particles",
        "steps": "number of steps (or give `t_end`)",
        "t_end": "final time on the clock `t = k lr` (or give `steps`)",
        "dt": "step of the continuous lenses (flows, SDE; default `lr / 10`); `\"auto\"`: the SDE step "
              "whose stationary-variance bias is within `dt_tol`",
        "dt_tol": "bias tolerance of `dt = \"auto\"` (default 0.01)",
        "record_dt": "record every lens at the times 0, record_dt, 2 record_dt, ... (instead of `record_every`)",
        "record_every": "record every k-th step (and the final state)",
        "backend": "where the particles run",
        "seed": "key of the random streams: same seed, same numbers on every backend",
        "integrator": "SDE scheme (default `euler_maruyama`)",
        "bound": "a particle with a non-finite state or `abs(w_i) > bound` is stopped and left out of "
                 "the statistics and plots",
    },
    "plots": {
        "trajectories": "the lenses' paths and final clouds over the landscape (losses of 2 or more variables)",
        "loss_curves": "the median loss of each lens against time, with its 10-90% band",
        "bounds": "the trajectories' view `[[x0, x1], [y0, y1]]` in plot coordinates (default: a catalog "
                  "landscape's bounds for 2 variables, else around the recorded states)",
        "format": "file format of the figures",
        "plane": "the trajectories' plane for losses of more than 2 variables: two variable names, or "
                 '"hessian" for the top two Hessian eigenvectors where the first lens ends (default: '
                 '"hessian" beyond 2 variables)',
        "phase_diagram": 'a sweep\'s heat map, `{ x = "batch_size", y = "lr", var = "fraction", basin = 0 }` '
                         "(other keys select; default: the first basin's fraction, else the mean loss, when "
                         "`lr` and `batch_size` are swept)",
    },
    "output": {
        "folder": "output folder (default `out/<file name without .toml>`; `sdesim run --out` overrides it)",
    },
    "fokker_planck": {
        "bounds": "required: the grid's extent, one `[lo, hi]` per variable",
        "shape": "required: cells per variable",
        "steady_state": "solve for the steady state and its current",
        "steady_state_t": "freeze a learning-rate schedule at this time (default: the steady state at the "
                          "constant base `lr`, defined where the schedule's noise vanishes)",
        "evolve": "evolve the density to `t_end` and compare its marginal with the particles",
        "initial_std": "standard deviation of the initial Gaussian at `w0` (default: one grid cell)",
        "dt": "time step of the evolution (default `t_end / 200`)",
        "method": "time stepping of the evolution",
    },
    "sweep": {
        "seeds": "a count `n` (seeds `0 .. n-1`) or a list of seeds: the `seed` dimension (default 1)",
        "executor": 'where the points run: `"serial"` (default), `"processes"`, `"dask"` (a local cluster) or '
                    'a scheduler address `"tcp://host:8786"` (`sdesim run --scheduler` overrides it)',
        "workers": "processes of the `processes` and `dask` executors (default: one per core)",
        "store": "the zarr store written point by point (default `<output folder>/sweep.zarr`; "
                 "`sdesim run --resume` completes it)",
        "observe": 'observables besides the final mean, variance, loss and diverged fraction: tables '
                   '`{ type = "basin_fractions" }`, `"escape_times"`, `"stationary"`, `"sharpness"`, '
                   '`"trajectories"` with their options',
        "numba_threads": "Numba threads per worker (default `cores // workers`)",
    },
}


def load(path) -> dict:
    """Read and validate an experiment file; returns the configuration as a dict.

    A ``.json`` file is the ``experiment.resolved.json`` of an earlier run: every
    setting resolved, so running it repeats that run (into the default folder).
    """
    path = Path(path)
    json_file = path.suffix == ".json"
    try:
        text = path.read_text()
        config = _from_resolved(json.loads(text)) if json_file else tomllib.loads(text)
    except FileNotFoundError:
        raise ExperimentError(f"no experiment file at {path}") from None
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError, IsADirectoryError) as exc:
        raise ExperimentError(f"{path}: not valid {'JSON' if json_file else 'TOML'}: {exc}") from None
    validate(config)
    return config


def _from_resolved(config):
    """An experiment from a resolved configuration: ``null`` means the default, the folder is not reused."""
    if not isinstance(config, dict):
        raise ExperimentError(f"a resolved configuration is a JSON object, got {_describe(config)}")

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if v is not None}
        return [strip(v) for v in value] if isinstance(value, list) else value

    return strip({k: v for k, v in config.items() if k not in ("sdesim_version", "output")})


def validate(config: dict):
    """Check sections and keys; raise ``ExperimentError`` naming the first problem."""
    unknown = set(config) - set(SECTIONS) - {"dynamics"}
    if unknown:
        raise ExperimentError(f"unknown section(s) {sorted(unknown)}; allowed: "
                              f"{sorted(SECTIONS) + ['dynamics']}")
    for section, allowed in SECTIONS.items():
        table = config.get(section, {})
        if not isinstance(table, dict):
            raise ExperimentError(f"[{section}] must be a table")
        bad = set(table) - allowed
        if bad and section != "sweep":                 # a sweep's other keys name what it sweeps
            raise ExperimentError(f"unknown key(s) {sorted(bad)} in [{section}]; allowed: {sorted(allowed)}")
        _check_values(section, table)
    loss = config.get("loss", {})
    sources = [k for k in ("catalog", "expr", "quadratic") if k in loss]
    if len(sources) != 1:
        raise ExperimentError("[loss] needs exactly one of catalog, expr, quadratic")
    if "w0" not in config.get("simulation", {}):
        raise ExperimentError("[simulation] needs w0")
    dynamics = config.get("dynamics")
    if not isinstance(dynamics, list) or not dynamics:
        raise ExperimentError("give at least one [[dynamics]] table")
    if "sweep" in config:
        from sdesim.sweeps import experiment as sweeps
        sweeps.check(config)
        return
    if "phase_diagram" in config.get("plots", {}):
        raise ExperimentError("[plots] phase_diagram draws a sweep: add a [sweep] section")
    for i, table in enumerate(dynamics):
        build_dynamic(table, where=f"[[dynamics]] #{i + 1}")


def _check_values(section, table):
    """Check the type (and the allowed values) of every value of ``[section]``."""
    for key, value in table.items():
        where = f"[{section}] {key}"
        if key in SCALARS[section]:
            _check_scalar(where, value, SCALARS[section][key])
            choices = _choices(section, key) if SCALARS[section][key] is str else None
            if choices is not None and value not in choices:
                raise ExperimentError(f"{where} must be one of {choices}, got {value!r}")
        elif (section, key) in ARRAYS:
            _check_array(where, value, *ARRAYS[section, key])
    dt = table.get("dt") if section == "simulation" else None
    if dt is not None and dt != "auto" and (isinstance(dt, bool) or not isinstance(dt, (int, float))):
        raise ExperimentError(f"[simulation] dt must be a number or \"auto\", got {_describe(dt)}")
    plane = table.get("plane", "hessian") if section == "plots" else "hessian"
    if plane != "hessian" and not (isinstance(plane, list) and len(plane) == 2 and
                                   all(isinstance(v, str) for v in plane)):
        raise ExperimentError(f"[plots] plane must be {OTHER_TYPES['plots', 'plane']}, got {_describe(plane)}")
    if section == "loss":
        params = table.get("params", {})
        if not isinstance(params, dict):
            raise ExperimentError(f"[loss] params must be a table of numbers, got {_describe(params)}")
        for name, value in params.items():
            _check_scalar(f"[loss] params.{name}", value, float)
        names = table.get("vars", [])
        if not (isinstance(names, list) and all(isinstance(v, str) for v in names)):
            raise ExperimentError(f"[loss] vars must be a list of names, got {_describe(names)}")


def _check_scalar(where, value, kind):
    ok = isinstance(value, (int, float) if kind is float else kind)
    if not ok or (kind is not bool and isinstance(value, bool)):
        raise ExperimentError(f"{where} must be {_KIND_NAMES[kind]}, got {_describe(value)}")


def _check_array(where, value, ndims, pairs, description):
    try:
        arr = None if isinstance(value, (bool, str)) else np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.ndim not in ndims or (pairs and arr.shape[-1] != 2):
        raise ExperimentError(f"{where} must be {description}, got {_describe(value)}")


def _check_fields(where, cls, spec):
    """Check the values of ``spec`` against the types of the fields of ``cls`` (others are left to ``cls``)."""
    hints = typing.get_type_hints(cls)
    for key, value in spec.items():
        hint = hints.get(key)
        kinds = [a for a in typing.get_args(hint) or (hint,) if a is not type(None)]
        if len(kinds) == 1 and kinds[0] in _KIND_NAMES:
            _check_scalar(f"{where} {key}", value, kinds[0])


def _describe(value):
    if isinstance(value, list):
        return f"the list {value!r}"
    return f"the table {value!r}" if isinstance(value, dict) else repr(value)


def build_loss(table: dict):
    """The loss named by a ``[loss]`` table, and its plotting bounds (or ``None``)."""
    import sdesim as sd
    params = table.get("params", {})
    if "catalog" in table:
        try:
            land = sd.catalog.get(table["catalog"], **params)
        except KeyError:
            raise ExperimentError(f"[loss] catalog: unknown landscape {table['catalog']!r}; "
                                  f"choose one of {sd.catalog.names()}") from None
        return land.loss, land.bounds
    if "quadratic" in table:
        return sd.QuadraticModel.load(table["quadratic"]), None
    return sd.Loss(table["expr"], vars=table.get("vars"), **params), None


def _schedule(spec, where):
    from sdesim.dynamics import schedules
    if not isinstance(spec, dict):
        raise ExperimentError(f"{where}: schedule must be a table such as {{ type = \"Cosine\", t_total = 2.0 }}, "
                              f"got {_describe(spec)}")
    spec = dict(spec)
    kind = spec.pop("type", None)
    if kind not in SCHEDULES:
        raise ExperimentError(f"{where}: schedule type must be one of {SCHEDULES}, got {kind!r}")
    cls = getattr(schedules, kind)
    _check_fields(f"{where} schedule {kind}:", cls, spec)
    if "then" in spec:
        spec["then"] = _schedule(spec["then"], where)
    try:
        return cls(**spec)
    except TypeError as exc:
        raise ExperimentError(f"{where}: schedule {kind}: {exc}") from None


def build_dynamic(table: dict, where="[[dynamics]]"):
    """A dynamic from a ``[[dynamics]]`` table (``type`` plus the dataclass's fields)."""
    import sdesim.dynamics as dynamics
    if not isinstance(table, dict):
        raise ExperimentError(f"{where} must be a table, got {_describe(table)}")
    spec = dict(table)
    kind = spec.pop("type", None)
    if kind not in DYNAMICS:
        raise ExperimentError(f"{where}: type must be one of {DYNAMICS}, got {kind!r}")
    cls = getattr(dynamics, kind)
    fields = {f.name for f in dataclasses.fields(cls)}
    bad = set(spec) - fields
    if bad:
        raise ExperimentError(f"{where} ({kind}): unknown key(s) {sorted(bad)}; allowed: {sorted(fields)}")
    _check_fields(f"{where} ({kind}):", cls, spec)
    if "schedule" in spec:
        spec["schedule"] = _schedule(spec["schedule"], where)
    try:
        return cls(**spec)
    except (TypeError, ValueError) as exc:
        raise ExperimentError(f"{where} ({kind}): {exc}") from None


def run(path, out=None, scheduler=None, resume=False) -> dict:
    """Run an experiment file; returns the summary written beside the results.

    ``summary["files"]`` maps every file written to what it holds;
    :func:`format_summary` renders the summary for a terminal. A file with a
    ``[sweep]`` section runs :func:`sdesim.sweep` (on the Dask ``scheduler`` at that
    address when given; ``resume=True`` completes its store).
    """
    import inspect

    import matplotlib
    matplotlib.use("Agg")

    import sdesim as sd
    from sdesim.simulation import lens_settings

    config = load(path)
    if "sweep" in config:
        from sdesim.sweeps import experiment as sweeps
        return sweeps.run(config, path, out, scheduler=scheduler, resume=resume)
    if scheduler is not None or resume:
        raise ExperimentError("--scheduler and --resume apply to experiment files with a [sweep] section")
    loss, bounds = build_loss(config["loss"])
    sim = dict(config["simulation"])
    folder = Path(out or config.get("output", {}).get("folder", "out/" + Path(path).stem))
    folder.mkdir(parents=True, exist_ok=True)
    results, files = [], {}
    summary = {"experiment": str(path), "folder": str(folder), "loss": repr(loss), "lenses": {}, "files": files,
               "bound": sim.get("bound", _default("simulation", "bound"))}
    for table in config["dynamics"]:
        dyn = build_dynamic(table)
        settings = dict(sim)
        if not dyn.continuous:
            settings.pop("integrator", None)
        settings["n_particles"], settings["dt"] = lens_settings(          # as in compare
            dyn, settings.get("w0"), settings.get("n_particles", 1), settings.get("dt"),
            settings.get("record_dt"), settings.get("t_end"))
        try:
            res = sd.simulate(loss, dyn, **settings)
        except TypeError as exc:
            raise ExperimentError(f"[simulation]: {exc}") from None
        results.append(res)
        label = res.label if res.label not in summary["lenses"] else f"{res.label} #{len(results)}"
        stem = "".join(c if c.isalnum() else "_" for c in label).strip("_")
        files[str(res.save(folder / f"{stem}.npz"))] = f"results of {label}, for sd.Result.load"
        summary["lenses"][label] = {**_lens_summary(res), "file": f"{stem}.npz"}
    _plots(config.get("plots", {}), loss, bounds, results, folder, files)
    if "fokker_planck" in config:
        summary["fokker_planck"] = run_fokker_planck(config["fokker_planck"], loss, config["dynamics"], results,
                                                     sim, folder, config.get("plots", {}).get("format", "png"),
                                                     files=files)
    defaults = {k: v.default for k, v in inspect.signature(sd.simulate).parameters.items()
                if k in SECTIONS["simulation"] and v.default is not inspect.Parameter.empty}
    resolved = {**config, "simulation": {**defaults, **sim}, "output": {"folder": str(folder)},
                "dynamics": [build_dynamic(t).describe() for t in config["dynamics"]],
                "sdesim_version": sd.__version__}
    files[str(folder / "experiment.resolved.json")] = "every setting resolved: sdesim run it to repeat the run"
    files[str(folder / "summary.json")] = "this summary"
    (folder / "experiment.resolved.json").write_text(json.dumps(resolved, indent=2))
    (folder / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _lens_summary(res) -> dict:
    """What a lens measured: final mean, covariance and loss of the particles left, and how many stopped."""
    final = res.final[~res.diverged]
    losses = res.loss[-1][np.isfinite(res.loss[-1])]
    median, lo, hi = np.quantile(losses, [0.5, 0.1, 0.9]) if len(losses) else (np.nan,) * 3
    return {"n_particles": res.n_particles, "final_mean": final.mean(axis=0).tolist() if len(final) else None,
            "final_covariance": np.cov(final.T).tolist() if len(final) > 1 else None,
            "final_loss_mean": float(np.mean(losses)) if len(losses) else None,
            "final_loss_median": float(median), "final_loss_10_90": [float(lo), float(hi)],
            "diverged": int(res.diverged.sum())}


def _plots(plots, loss, bounds, results, folder, files):
    """The trajectories and loss-curve figures asked for by ``[plots]``."""
    import matplotlib.pyplot as plt

    from sdesim import plot

    fmt = plots.get("format", DEFAULTS["plots"]["format"])
    plot.use()
    if plots.get("trajectories", DEFAULTS["plots"]["trajectories"]) and loss.dim >= 2:
        plane = plots.get("plane", "hessian" if loss.dim > 2 else None)
        fig, ax = plt.subplots(figsize=(5.5, 5))
        plot.trajectories(loss, results, bounds=plots.get("bounds", bounds if loss.dim == 2 else None), ax=ax,
                          plane=plane)
        _save(fig, folder / f"trajectories.{fmt}", files, "figure: every lens's paths over the landscape")
    if plots.get("loss_curves", DEFAULTS["plots"]["loss_curves"]):
        fig, ax = plt.subplots(figsize=(5.5, 4))
        plot.loss_curves(results, ax=ax)
        _save(fig, folder / f"loss_curves.{fmt}", files, "figure: median loss of every lens with its 10-90% band")


def _save(fig, path, files, what):
    """Save and close ``fig`` at ``path`` (overlapping tick labels thinned), noting it in ``files``."""
    import matplotlib.pyplot as plt

    from sdesim.plot import tidy_ticks
    tidy_ticks(fig)
    fig.savefig(path)
    plt.close(fig)
    files[str(path)] = what


def format_summary(summary) -> str:
    """A one-screen account of a run: what each lens measured, and every file written."""
    if "sweep" in summary:
        from sdesim.sweeps import experiment as sweeps
        return sweeps.format_summary(summary)
    lines = [f"{summary['experiment']}: {summary['loss']}",
             f"{'lens':40s} {'particles':>9s} {'stopped':>7s}  {'final loss: median [10%, 90%]':30s} final mean"]
    for label, lens in summary["lenses"].items():
        lo, hi = lens["final_loss_10_90"]
        loss = f"{lens['final_loss_median']:.4g} [{lo:.3g}, {hi:.3g}]"
        mean = lens["final_mean"] or []
        shown = ", ".join(f"{m:.4g}" for m in mean[:4]) + (", ..." if len(mean) > 4 else "")
        lines.append(f"{label[:40]:40s} {lens['n_particles']:9d} {lens['diverged']:7d}  {loss:30s} ({shown})")
    for label, entry in summary.get("fokker_planck", {}).items():
        parts = [f"steady-state mean ({', '.join(f'{m:.4g}' for m in entry['steady_state_mean'][:4])})"
                 if "steady_state_mean" in entry else "",
                 f"mass error {entry['mass_error']:.1e}" if "mass_error" in entry else ""]
        lines.append(f"Fokker-Planck of {label}: " + "; ".join(p for p in parts if p))
    if any(lens["diverged"] for lens in summary["lenses"].values()):
        lines.append(f"stopped: particles past the divergence bound (|w_i| > {summary['bound']:g}), left out of "
                     "the statistics and the figures")
    lines.append(f"wrote {len(summary['files'])} files:")
    lines += [f"  {path}: {what}" for path, what in summary["files"].items()]
    return "\n".join(lines)


def run_fokker_planck(table, loss, dynamics, results, sim, folder, fmt="png", files=None) -> dict:
    """Densities of the SDE lenses on a grid: steady state (with current) and evolution.

    The steady state is that of the lens without its schedule (constant base
    ``lr``), or with the schedule frozen at ``steady_state_t`` when given. The
    initial density is a Gaussian at ``w0`` of standard deviation ``initial_std``
    (default: one cell); the particle results are plotted next to the density at
    the final time. ``files`` (a dict) gets every file written, with what it holds.
    """
    import matplotlib.pyplot as plt

    import sdesim as sd
    from sdesim import plot
    from sdesim.fokker_planck import observables

    if "bounds" not in table or "shape" not in table:
        raise ExperimentError("[fokker_planck] needs bounds and shape")
    grid = sd.Grid([tuple(b) for b in table["bounds"]], tuple(table["shape"]))
    if grid.dim != loss.dim:
        raise ExperimentError(f"[fokker_planck] bounds have {grid.dim} dimensions, the loss has {loss.dim}")
    out = {}
    sdes = [(build_dynamic(t), r) for t, r in zip(dynamics, results) if t.get("type") == "SGDDiffusion"]
    if not sdes:
        raise ExperimentError("[fokker_planck] needs at least one SGDDiffusion lens")
    fig, axes = plt.subplots(len(sdes), 2, figsize=(10, 4 * len(sdes)), squeeze=False)
    for (dyn, res), row in zip(sdes, axes):
        fp = sd.FokkerPlanck.from_dynamics(loss, dyn, grid)
        entry, arrays = {}, {}
        stem = "".join(c if c.isalnum() else "_" for c in res.label).strip("_")
        if table.get("steady_state", DEFAULTS["fokker_planck"]["steady_state"]):
            t, steady = table.get("steady_state_t"), fp
            if t is None:  # the lens at its constant base lr, defined where the schedule's noise vanishes
                t, at = 0.0, f"lr = {dyn.lr:g}"
                if dyn.schedule is not None:
                    steady = sd.FokkerPlanck.from_dynamics(loss, dataclasses.replace(dyn, schedule=None), grid)
            else:
                at = f"t = {t:g}"
            try:
                rho = steady.steady_state(t=t)
            except ConfigError as exc:
                raise ExperimentError(f"[fokker_planck] steady state of {res.label}: {exc}; choose another "
                                      "steady_state_t or set steady_state = false") from None
            arrays["steady_state"] = rho
            if grid.dim >= 2:
                plot.heatmap(grid, rho, ax=row[0], current=steady.current(rho, t=t), loss=loss,
                             label=r"steady-state density $\rho$")
            else:
                row[0].plot(grid.axes[0], rho, "k-")
                row[0].set(xlabel=loss.names[0], ylabel=r"steady-state density $\rho$")
            row[0].set_title(f"{res.label}: steady state at {at}")
            entry["steady_state_mean"] = (rho.ravel() * grid.cell_volume
                                          @ grid.centers.reshape(-1, grid.dim)).tolist()
        if table.get("evolve", DEFAULTS["fokker_planck"]["evolve"]):
            std = table.get("initial_std", float(grid.spacing.max()))
            w0 = np.broadcast_to(np.asarray(sim["w0"], float), (grid.dim,)) if np.ndim(sim["w0"]) == 1 \
                else np.asarray(sim["w0"], float).mean(axis=0)
            dens = fp.evolve(grid.gaussian(w0, std**2 * np.eye(grid.dim)), t_end=float(res.t[-1]),
                             dt=table.get("dt", float(res.t[-1]) / 200),
                             method=table.get("method", DEFAULTS["fokker_planck"]["method"]))
            arrays.update(t=dens.t, rho=dens.rho)
            marginal = observables.marginal(grid, dens.rho[-1], 0)
            row[1].plot(grid.axes[0], marginal, "k-", label="Fokker-Planck")
            row[1].hist(res.final[~res.diverged, 0], bins=150, range=tuple(table["bounds"][0]), density=True,
                        histtype="step", label="particles")
            row[1].set(title=f"t = {res.t[-1]:g}: marginal of {loss.names[0]}", xlabel=loss.names[0],
                       ylabel="density")
            plot.legend(row[1])
            entry["mass_error"] = float(abs(dens.mass()[-1] - 1.0))
        np.savez_compressed(folder / f"fokker_planck_{stem}.npz", **arrays)
        if files is not None:
            files[str(folder / f"fokker_planck_{stem}.npz")] = f"densities of {res.label}, for numpy.load"
        out[res.label] = entry
    fig.tight_layout()
    fig.savefig(folder / f"fokker_planck.{fmt}")
    plt.close(fig)
    if files is not None:
        files[str(folder / f"fokker_planck.{fmt}")] = "figure: steady states and densities against particles"
    return out



_TYPE_NAMES = {float: "number", int: "integer", bool: "boolean", str: "string"}
_PAGE_HEAD = """# Experiment files

<!-- Generated from sdesim/experiment.py by `sdesim schema --out docs/experiments.md`: edit the tables there. -->

`sdesim run file.toml` reads an experiment file (TOML), checks every section, key, type and
allowed value below (a mistake raises an error naming the section and the key), runs every
lens, and writes the results, figures, `summary.json` and `experiment.resolved.json` (every
setting resolved; `sdesim run out/x/experiment.resolved.json --out out/y` repeats the run).
It prints what each lens measured and where each file went. Examples: `examples/*.toml`.

A default of "—" means none: the key is required, or optional with the default its meaning
states. Required sections: `[loss]`, `[simulation]` and at least one `[[dynamics]]`."""


def schema_markdown() -> str:
    """The reference page of experiment files (``docs/experiments.md``), rendered from the validator's
    tables: SECTIONS, SCALARS, ARRAYS, OTHER_TYPES, DEFAULTS, the registries, and the dynamics' and
    schedules' fields."""
    order = ["loss", "simulation", "dynamics"] + [s for s in SECTIONS if s not in ("loss", "simulation")]
    parts = [_PAGE_HEAD]
    for section in order:
        parts.append(_dynamics_markdown() if section == "dynamics" else _section_markdown(section))
    return "\n\n".join(parts) + "\n"


def _section_markdown(section) -> str:
    keys = [k for k in KEYS.get(section, {}) if k in SECTIONS[section]]
    keys += sorted(SECTIONS[section] - set(keys))
    rows = [f"| `{key}` | {_type_text(section, key)} | {_toml(_default(section, key))} | "
            f"{_choices_text(_choices(section, key))} | {KEYS.get(section, {}).get(key, '')} |" for key in keys]
    return "\n".join([f"## `[{section}]`", "", SECTION_DOCS.get(section, ""), "",
                      "| key | type | default | allowed values | meaning |", "| --- | --- | --- | --- | --- |", *rows])


def _dynamics_markdown() -> str:
    from sdesim import dynamics
    from sdesim.dynamics import schedules
    parts = ["## `[[dynamics]]`\n\n" + SECTION_DOCS["dynamics"] + f" `type` is one of {_choices_text(DYNAMICS)}; "
             "the other keys are the fields of `sd.<type>` (see [dynamics](dynamics.md))."]
    parts += [_fields_markdown(f'`type = "{name}"`', getattr(dynamics, name)) for name in DYNAMICS]
    parts.append("### Schedules\n\nA `schedule` of a dynamic is an inline table, e.g. "
                 '`schedule = { type = "Cosine", t_total = 2.0 }`, multiplying its `lr`; `type` is one of '
                 f"{_choices_text(SCHEDULES)}, the other keys are that schedule's fields.")
    parts += [_fields_markdown(f'`schedule = {{ type = "{name}", ... }}`', getattr(schedules, name), level="####")
              for name in SCHEDULES]
    return "\n\n".join(parts)


def _fields_markdown(title, cls, level="###") -> str:
    """A dataclass's fields as a table: key, type, default and allowed values."""
    from sdesim.dynamics.diffusion import NOISES
    from sdesim.dynamics.sampling import SAMPLINGS
    choices = {"sampling": SAMPLINGS, "noise": NOISES}
    hints = typing.get_type_hints(cls)
    summary = (cls.__doc__ or "").strip().splitlines()[0].replace("``", "`").replace(":math:", "") \
        .replace("the module docstring", "[dynamics](dynamics.md)").replace("module docstring", "[dynamics](dynamics.md)")
    rows = []
    for f in dataclasses.fields(cls):
        default = "required" if f.default is dataclasses.MISSING else _toml(f.default)
        rows.append(f"| `{f.name}` | {_hint_text(hints[f.name])} | {default} | {_choices_text(choices.get(f.name))} |")
    if not rows:
        return f"{level} {title}\n\n{summary} No keys."
    return "\n".join([f"{level} {title}", "", summary, "", "| key | type | default | allowed values |",
                      "| --- | --- | --- | --- |", *rows])


def _hint_text(hint) -> str:
    from sdesim.dynamics.schedules import Schedule
    kinds = [a for a in typing.get_args(hint) or (hint,) if a is not type(None)]
    if len(kinds) == 1 and kinds[0] in _TYPE_NAMES:
        return _TYPE_NAMES[kinds[0]]
    if len(kinds) == 1 and kinds[0] is Schedule:
        return "schedule table"
    return "number or array (nested lists)"


def _type_text(section, key) -> str:
    if key in SCALARS.get(section, {}):
        return _TYPE_NAMES[SCALARS[section][key]]
    if (section, key) in ARRAYS:
        return ARRAYS[section, key][2]
    return OTHER_TYPES.get((section, key), "")


def _default(section, key):
    if section == "simulation":
        import inspect

        from sdesim.simulation import simulate
        parameter = inspect.signature(simulate).parameters.get(key)
        return None if parameter is None or parameter.default is inspect.Parameter.empty else parameter.default
    return DEFAULTS.get(section, {}).get(key)


def _toml(value) -> str:
    """A default as written in TOML (``—`` for none)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f'`"{value}"`' if isinstance(value, str) else f"`{value:g}`" if isinstance(value, float) \
        else f"`{value}`"


def _choices_text(choices) -> str:
    return ", ".join(f"`{c}`" for c in choices) if choices else ""
