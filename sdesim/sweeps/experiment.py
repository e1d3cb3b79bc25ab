"""The ``[sweep]`` section of experiment files: lists become grids.

::

    [sweep]
    lr = { geomspace = [0.01, 0.08, 24] }     # a list of values, or { geomspace | linspace = [a, b, n] }
    batch_size = [1, 2, 4, 8, 16, 32, 64]
    seeds = 4                                 # a count, or a list of seeds
    executor = "processes"                    # "serial", "processes", "dask" or a scheduler address
    store = "out/phase/sweep.zarr"            # default: <output folder>/sweep.zarr
    observe = [{ type = "basin_fractions" }]

Every key other than the options names what is swept: a field of the file's one
``[[dynamics]]`` table (whose own keys are fixed), a loss parameter (``[loss] params``,
or any other symbol of ``expr``: bound as a :class:`~sdesim.sweeps.Constant`, so the
kernels compile once), or ``n_particles``, ``steps``, ``t_end``, ``dt`` (not also in
``[simulation]``). ``observe`` lists tables ``{ type = ..., ... }``:
``basin_fractions`` and ``escape_times`` (``centers`` of the minima, default a catalog
landscape's; ``method``; ``escape_times`` also ``radius`` and ``record_every``),
``stationary`` (``burn_in``, ``batches``, ``record_every``), ``sharpness``,
``trajectories`` (``record_every``). ``[plots] phase_diagram = { x = "batch_size",
y = "lr", var = "fraction", basin = 0 }`` draws the result (the other keys select).
The run writes the zarr store, ``phase_diagram.<format>``, ``summary.json`` and
``experiment.resolved.json`` (every grid spelled out).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

OPTIONS = ("seeds", "executor", "workers", "store", "observe", "numba_threads")
OBSERVABLES = {"basin_fractions": {"centers", "method"},
               "escape_times": {"centers", "method", "radius", "record_every"},
               "stationary": {"burn_in", "batches", "record_every"},
               "sharpness": set(), "trajectories": {"record_every"}}
SPACINGS = ("geomspace", "linspace")


def _error(message):
    from sdesim.experiment import ExperimentError
    return ExperimentError(message)


def grids(table: dict) -> dict:
    """``{name: list of values}`` of the swept keys of a ``[sweep]`` table."""
    out = {}
    for name, value in table.items():
        if name in OPTIONS:
            continue
        where = f"[sweep] {name}"
        if isinstance(value, dict):
            spacing = [k for k in value if k in SPACINGS]
            if len(value) != 1 or not spacing:
                raise _error(f"{where} must be a list of values or {{ geomspace = [start, stop, num] }} "
                             f"(or linspace), got {value!r}")
            args = value[spacing[0]]
            if not (isinstance(args, list) and len(args) == 3 and all(isinstance(a, (int, float)) for a in args)
                    and float(args[2]).is_integer() and args[2] >= 1):
                raise _error(f"{where}: {spacing[0]} takes [start, stop, num], got {args!r}")
            if spacing[0] == "geomspace" and not (args[0] > 0 and args[1] > 0):
                raise _error(f"{where}: geomspace needs positive start and stop, got {args!r}")
            value = getattr(np, spacing[0])(args[0], args[1], int(args[2])).tolist()
        if not isinstance(value, list):
            raise _error(f"{where} must be a list of values (lists become grids), got {value!r}; a value that "
                         "does not change belongs in [[dynamics]], [simulation] or [loss]")
        if not value:
            raise _error(f"{where}: the list of values is empty")
        if not all(isinstance(v, (int, float, str)) for v in value):
            raise _error(f"{where} must list numbers or strings, got {value!r}")
        out[name] = value
    return out


def loss_parameters(loss_table: dict) -> set:
    """Loss parameters a sweep may set: a catalog landscape's arguments, or the symbols of ``expr``."""
    from sdesim.sweeps.spec import _parameters
    if "catalog" in loss_table:
        from sdesim.losses import catalog
        builder = getattr(catalog, loss_table["catalog"], None)
        return set(_parameters(builder)) if builder is not None else set()
    if "expr" in loss_table:
        from sdesim.losses.parsing import parse
        try:
            symbols = {s.name for s in parse(loss_table["expr"]).free_symbols}
        except Exception as exc:  # noqa: BLE001 (the loss section reports its own errors)
            raise _error(f"[loss] expr: {exc}") from None
        return symbols - set(loss_table.get("vars", []))
    return set()


def check(config: dict):
    """Validate a file with a ``[sweep]`` section (called by ``experiment.validate``)."""
    import dataclasses

    from sdesim import dynamics
    from sdesim.experiment import DYNAMICS, _check_fields, _check_scalar, _schedule
    from sdesim.sweeps.spec import RUN_SETTINGS

    table, sim = config["sweep"], config.get("simulation", {})
    if len(config["dynamics"]) != 1:
        raise _error(f"a sweep runs one [[dynamics]] table (its lists go in [sweep]), got {len(config['dynamics'])}")
    dyn = config["dynamics"][0]
    if not isinstance(dyn, dict) or dyn.get("type") not in DYNAMICS:
        raise _error(f"[[dynamics]]: type must be one of {DYNAMICS}")
    cls = getattr(dynamics, dyn["type"])
    fields = {f.name for f in dataclasses.fields(cls)}
    fixed = {k: v for k, v in dyn.items() if k != "type"}
    bad = set(fixed) - fields
    if bad:
        raise _error(f"[[dynamics]] ({dyn['type']}): unknown key(s) {sorted(bad)}; allowed: {sorted(fields)}")
    _check_fields(f"[[dynamics]] ({dyn['type']}):", cls, fixed)
    if "schedule" in fixed:
        _schedule(fixed["schedule"], "[[dynamics]]")
    allowed = fields | loss_parameters(config["loss"]) | set(RUN_SETTINGS)
    for name in grids(table):
        if name not in allowed:
            raise _error(f"[sweep] {name}: unknown name to sweep; allowed: options {list(OPTIONS)}, fields of "
                         f"{dyn['type']} {sorted(fields)}, loss parameters {sorted(loss_parameters(config['loss']))}, "
                         f"settings {list(RUN_SETTINGS)}")
        for section, keys in (("[[dynamics]]", fixed), ("[simulation]", sim), ("[loss] params",
                                                                                config["loss"].get("params", {}))):
            if name in keys:
                raise _error(f"{name} is both swept ([sweep]) and fixed ({section}): give it once")
    for key in ("record_every", "record_dt"):
        if key in sim:
            raise _error(f"[simulation] {key} does not apply to a sweep: the observables choose their records")
    if "dt_tol" in sim or sim.get("dt") == "auto":
        raise _error("[simulation] dt = \"auto\" (and dt_tol) does not apply to a sweep: give dt as a number")
    if "seed" in sim and "seeds" in table:
        raise _error("give [sweep] seeds or [simulation] seed, not both")
    seeds = table.get("seeds", 1)
    if not (isinstance(seeds, int) and not isinstance(seeds, bool) and seeds >= 1
            or isinstance(seeds, list) and seeds and all(isinstance(s, int) and s >= 0 for s in seeds)):
        raise _error(f"[sweep] seeds must be a positive count or a list of seeds, got {seeds!r}")
    for key, kind in (("executor", str), ("store", str), ("workers", int), ("numba_threads", int)):
        if key in table:
            _check_scalar(f"[sweep] {key}", table[key], kind)
    observe = table.get("observe", [])
    if not isinstance(observe, list) or not all(isinstance(o, dict) for o in observe):
        raise _error(f"[sweep] observe must be a list of tables {{ type = ... }}, got {observe!r}")
    for o in observe:
        kind = o.get("type")
        if kind not in OBSERVABLES:
            raise _error(f"[sweep] observe: type must be one of {sorted(OBSERVABLES)}, got {kind!r}")
        extra = set(o) - OBSERVABLES[kind] - {"type"}
        if extra:
            raise _error(f"[sweep] observe {kind}: unknown key(s) {sorted(extra)}; "
                         f"allowed: {sorted(OBSERVABLES[kind])}")
        if kind in ("basin_fractions", "escape_times") and "centers" not in o and "catalog" not in config["loss"]:
            raise _error(f"[sweep] observe {kind} needs centers (the minima) unless the loss is a catalog landscape")
    figure = config.get("plots", {}).get("phase_diagram", {})
    if not isinstance(figure, dict):
        raise _error(f"[plots] phase_diagram must be a table {{ x = ..., y = ..., var = ... }}, got {figure!r}")
    for key in ("x", "y", "var"):
        if key in figure:
            _check_scalar(f"[plots] phase_diagram.{key}", figure[key], str)


def _loss(table: dict, swept: dict):
    """The loss of the sweep: a catalog landscape (its arguments swept by name) or a ``Loss`` whose
    swept parameters are bound to :class:`Constant` (one compilation for every value)."""
    import sdesim as sd
    from sdesim.sweeps.spec import Constant
    params = table.get("params", {})
    if "catalog" in table:
        return sd.catalog.get(table["catalog"], **params)
    if "quadratic" in table:
        return sd.QuadraticModel.load(table["quadratic"])
    bound = {k: Constant(v[0]) for k, v in swept.items() if k in loss_parameters(table)}
    return sd.Loss(table["expr"], vars=table.get("vars"), **params, **bound)


def _observables(observe, loss):
    from sdesim.analysis.basins import Basins
    from sdesim.sweeps import observables as obs
    out = []
    for o in observe:
        o = dict(o)
        kind = o.pop("type")
        if kind in ("basin_fractions", "escape_times"):
            method = o.pop("method", "nearest")
            centers = o.pop("centers", None)
            basins = Basins.from_landscape(loss, method=method) if centers is None else \
                Basins(centers, loss=loss if method == "gradient" else None, method=method)
            out.append(obs.basin_fractions_of(basins) if kind == "basin_fractions"
                       else obs.escape_times_of(basins, **o))
        else:
            out.append({"stationary": obs.stationary_of, "sharpness": obs.sharpness_of,
                        "trajectories": obs.trajectories}[kind](**o))
    return out


def run(config: dict, path, out=None, scheduler=None, resume=False) -> dict:
    """Run the sweep of a validated experiment configuration; returns its summary."""
    import sdesim as sd
    from sdesim.experiment import _schedule

    table, sim = config["sweep"], dict(config.get("simulation", {}))
    folder = Path(out or config.get("output", {}).get("folder", "out/" + Path(path).stem))
    folder.mkdir(parents=True, exist_ok=True)
    over = grids(table)
    loss = _loss(config["loss"], over)
    dyn = dict(config["dynamics"][0])
    cls = getattr(sd, dyn.pop("type"))
    if "schedule" in dyn:
        dyn["schedule"] = _schedule(dyn["schedule"], "[[dynamics]]")
    if not cls.continuous:
        sim.pop("dt", None)
        sim.pop("integrator", None)
    seeds = [sim.pop("seed")] if "seed" in sim else table.get("seeds", 1)
    store = Path(table.get("store", folder / "sweep.zarr"))
    ds = sd.sweep(loss, cls, over, fixed=dyn, seeds=seeds, observe=_observables(table.get("observe", []), loss),
                  executor=scheduler or table.get("executor", "serial"), workers=table.get("workers"),
                  numba_threads=table.get("numba_threads"), store=store, resume=resume, **sim)
    files = {str(store): "the sweep, for xarray.open_zarr (points written as they finished)"}
    _figure(ds, over, config.get("plots", {}), folder, files)
    resolved = {**config, "sweep": {**table, **over, "seeds": seeds, "store": str(store)},
                "output": {"folder": str(folder)}, "sdesim_version": sd.__version__}
    name = config["loss"].get("catalog")
    summary = {"experiment": str(path), "folder": str(folder),
               "loss": f"{name} {dict(loss.params)}: {loss.loss!r}" if name else repr(loss),
               "sweep": {"dims": {d: int(n) for d, n in ds.sizes.items()}, "variables": sorted(ds.data_vars),
                         "points": int(np.prod([len(v) for v in over.values()]) * ds.sizes["seed"]),
                         "diverged": float(ds["diverged"].mean())}, "files": files}
    files[str(folder / "experiment.resolved.json")] = "every setting resolved: sdesim run it to repeat the sweep"
    files[str(folder / "summary.json")] = "this summary"
    (folder / "experiment.resolved.json").write_text(json.dumps(resolved, indent=2, default=str))
    (folder / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _figure(ds, over, plots, folder, files):
    """``[plots] phase_diagram``, or by default the first basin fraction (else the mean loss) over
    ``(batch_size, lr)`` when both are swept."""
    import matplotlib.pyplot as plt

    from sdesim import plot
    spec = plots.get("phase_diagram")
    if spec is None:
        if not {"lr", "batch_size"} <= set(over):
            return
        spec = {"var": "fraction", "basin": 0} if "fraction" in ds else {"var": "loss"}
        spec.update({d: ds[d].values[0] for d in ds.dims if d not in ("lr", "batch_size", "seed", "basin")
                     and d in over})
    if not isinstance(spec, dict):
        raise _error(f"[plots] phase_diagram must be a table {{ x = ..., y = ..., var = ... }}, got {spec!r}")
    fmt = plots.get("format", "png")
    plot.use()
    fig, ax = plt.subplots(figsize=(6, 4.6))
    plot.phase_diagram(ds, ax=ax, **spec)
    fig.tight_layout()
    fig.savefig(folder / f"phase_diagram.{fmt}")
    plt.close(fig)
    files[str(folder / f"phase_diagram.{fmt}")] = "figure: the sweep as a heat map (sd.plot.phase_diagram)"


def format_summary(summary) -> str:
    """A one-screen account of a sweep: its dimensions, variables and files."""
    s = summary["sweep"]
    lines = [f"{summary['experiment']}: {summary['loss']}",
             f"sweep of {s['points']} points: " + ", ".join(f"{d} {n}" for d, n in s["dims"].items()),
             f"variables: {', '.join(s['variables'])}; mean fraction diverged {s['diverged']:.3g}",
             f"wrote {len(summary['files'])} files:"]
    lines += [f"  {path}: {what}" for path, what in summary["files"].items()]
    return "\n".join(lines)
