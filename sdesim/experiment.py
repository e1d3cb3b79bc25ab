"""Experiment files: a loss, dynamics, settings and outputs described in TOML.

``sdesim run experiment.toml`` validates the file (an unknown key, a bad value or
a value of the wrong type, such as a list where a number is expected, raises
`ExperimentError`, a `ConfigError`, naming the section and key), runs every
dynamic with ``simulate``, and writes the results, figures, a summary and the
resolved configuration to the output folder, so the run can be repeated exactly.

Sections: ``[loss]`` (one of ``catalog``, ``expr``, ``quadratic``), ``[simulation]``,
``[[dynamics]]`` (one table per lens), ``[fokker_planck]`` (the density of every
``SGDDiffusion`` lens on a grid: steady state with its current, and the evolution
from a Gaussian at ``w0`` next to the particles), ``[plots]``, ``[output]``. See
``examples/*.toml``.

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
    "simulation": {"w0", "n_particles", "steps", "t_end", "dt", "record_every", "backend", "seed",
                   "integrator", "bound"},
    "plots": {"trajectories", "loss_curves", "bounds", "format"},
    "output": {"folder"},
    "fokker_planck": {"bounds", "shape", "steady_state", "steady_state_t", "evolve", "initial_std", "dt",
                      "method"},
}
#: The type of every key holding one value (the dynamics' and schedules' come from their fields).
SCALARS = {
    "loss": {"catalog": str, "expr": str, "quadratic": str},
    "simulation": {"n_particles": int, "steps": int, "t_end": float, "dt": float, "record_every": int,
                   "backend": str, "seed": int, "integrator": str, "bound": float},
    "plots": {"trajectories": bool, "loss_curves": bool, "format": str},
    "output": {"folder": str},
    "fokker_planck": {"steady_state": bool, "steady_state_t": float, "evolve": bool, "initial_std": float,
                      "dt": float, "method": str},
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


def load(path) -> dict:
    """Read and validate an experiment file; returns the configuration as a dict."""
    path = Path(path)
    try:
        config = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ExperimentError(f"no experiment file at {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, IsADirectoryError) as exc:
        raise ExperimentError(f"{path}: not valid TOML: {exc}") from None
    validate(config)
    return config


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
        if bad:
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
    for i, table in enumerate(dynamics):
        build_dynamic(table, where=f"[[dynamics]] #{i + 1}")


def _check_values(section, table):
    """Check the type of every value of ``[section]``."""
    for key, value in table.items():
        where = f"[{section}] {key}"
        if key in SCALARS[section]:
            _check_scalar(where, value, SCALARS[section][key])
        elif (section, key) in ARRAYS:
            _check_array(where, value, *ARRAYS[section, key])
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


def run(path, out=None) -> dict:
    """Run an experiment file; returns the summary written beside the results."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import sdesim as sd
    from sdesim import plot

    config = load(path)
    loss, bounds = build_loss(config["loss"])
    sim = dict(config["simulation"])
    folder = Path(out or config.get("output", {}).get("folder", "out/" + Path(path).stem))
    folder.mkdir(parents=True, exist_ok=True)
    results, summary = [], {"experiment": str(path), "lenses": {}}
    for table in config["dynamics"]:
        dyn = build_dynamic(table)
        settings = dict(sim)
        if not dyn.continuous:
            settings.pop("dt", None)
            settings.pop("integrator", None)
        try:
            res = sd.simulate(loss, dyn, **settings)
        except TypeError as exc:
            raise ExperimentError(f"[simulation]: {exc}") from None
        results.append(res)
        label = res.label if res.label not in summary["lenses"] else f"{res.label} #{len(results)}"
        stem = "".join(c if c.isalnum() else "_" for c in label).strip("_")
        res.save(folder / f"{stem}.npz")
        final = res.final[~res.diverged]
        summary["lenses"][label] = {
            "final_mean": final.mean(axis=0).tolist(), "final_covariance": np.cov(final.T).tolist()
            if len(final) > 1 else None, "final_loss_mean": float(np.nanmean(res.loss[-1])),
            "diverged": int(res.diverged.sum()), "file": f"{stem}.npz"}
    plots = config.get("plots", {})
    fmt = plots.get("format", "png")
    plot.use()
    if plots.get("trajectories", True) and loss.dim == 2:
        fig, ax = plt.subplots(figsize=(5.5, 5))
        plot.trajectories(loss, results, bounds=plots.get("bounds", bounds) or _bounds(results), ax=ax)
        fig.savefig(folder / f"trajectories.{fmt}")
        plt.close(fig)
    if plots.get("loss_curves", True):
        fig, ax = plt.subplots(figsize=(5.5, 4))
        plot.loss_curves(results, ax=ax)
        fig.savefig(folder / f"loss_curves.{fmt}")
        plt.close(fig)
    import inspect
    defaults = {k: v.default for k, v in inspect.signature(sd.simulate).parameters.items()
                if k in SECTIONS["simulation"] and v.default is not inspect.Parameter.empty}
    if "fokker_planck" in config:
        summary["fokker_planck"] = run_fokker_planck(config["fokker_planck"], loss, config["dynamics"],
                                                     results, sim, folder, fmt)
    resolved = {**config, "simulation": {**defaults, **sim}, "output": {"folder": str(folder)},
                "dynamics": [build_dynamic(t).describe() for t in config["dynamics"]],
                "sdesim_version": sd.__version__}
    (folder / "experiment.resolved.json").write_text(json.dumps(resolved, indent=2))
    (folder / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def run_fokker_planck(table, loss, dynamics, results, sim, folder, fmt="png") -> dict:
    """Densities of the SDE lenses on a grid: steady state (with current) and evolution.

    The steady state is that of the lens without its schedule (constant base
    ``lr``), or with the schedule frozen at ``steady_state_t`` when given. The
    initial density is a Gaussian at ``w0`` of standard deviation ``initial_std``
    (default: one cell); the particle results are plotted next to the density at
    the final time.
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
        if table.get("steady_state", True):
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
            if grid.dim == 2:
                plot.heatmap(grid, rho, ax=row[0], current=steady.current(rho, t=t), loss=loss)
            else:
                row[0].plot(grid.axes[0], rho, "k-")
            row[0].set_title(f"{res.label}: steady state at {at}" + (" and current" if grid.dim == 2 else ""))
            entry["steady_state_mean"] = (rho.ravel() * grid.cell_volume
                                          @ grid.centers.reshape(-1, grid.dim)).tolist()
        if table.get("evolve", True):
            std = table.get("initial_std", float(grid.spacing.max()))
            w0 = np.broadcast_to(np.asarray(sim["w0"], float), (grid.dim,)) if np.ndim(sim["w0"]) == 1 \
                else np.asarray(sim["w0"], float).mean(axis=0)
            dens = fp.evolve(grid.gaussian(w0, std**2 * np.eye(grid.dim)), t_end=float(res.t[-1]),
                             dt=table.get("dt", float(res.t[-1]) / 200), method=table.get("method", "tr-bdf2"))
            arrays.update(t=dens.t, rho=dens.rho)
            marginal = observables.marginal(grid, dens.rho[-1], 0)
            row[1].plot(grid.axes[0], marginal, "k-", label="Fokker-Planck")
            row[1].hist(res.final[~res.diverged, 0], bins=150, range=tuple(table["bounds"][0]), density=True,
                        histtype="step", label="particles")
            row[1].set(title=f"t = {res.t[-1]:g}: marginal of {getattr(loss, 'names', ['w0'])[0]}",
                       xlabel=getattr(loss, "names", ["w0"])[0])
            row[1].legend()
            entry["mass_error"] = float(abs(dens.mass()[-1] - 1.0))
        np.savez_compressed(folder / f"fokker_planck_{stem}.npz", **arrays)
        out[res.label] = entry
    fig.tight_layout()
    fig.savefig(folder / f"fokker_planck.{fmt}")
    plt.close(fig)
    return out


def _bounds(results):
    w = np.concatenate([r.w.reshape(-1, r.dim) for r in results])
    w = w[np.isfinite(w).all(axis=1)]
    lo, hi = w.min(axis=0), w.max(axis=0)
    pad = 0.15 * (hi - lo) + 1e-3
    return [(lo[0] - pad[0], hi[0] + pad[0]), (lo[1] - pad[1], hi[1] + pad[1])]
