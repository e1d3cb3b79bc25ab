"""Sweeps: the same dataset on every executor (a real local Dask cluster included), a killed worker,
an interrupted and resumed sweep, bad specifications, experiment files, observables against their
analyses, and the phase-diagram plot."""

import logging
import os
import signal
import sys
from dataclasses import dataclass

import numpy as np
import pytest

import sdesim as sd
from sdesim import cli, experiment
from sdesim.analysis.basins import Basins
from sdesim.errors import ConfigError
from sdesim.experiment import ExperimentError
from sdesim.sweeps import Constant, Observable, trajectories

xr = pytest.importorskip("xarray")
distributed = pytest.importorskip("distributed")
pytest.importorskip("zarr")
cloudpickle = pytest.importorskip("cloudpickle")
cloudpickle.register_pickle_by_value(sys.modules[__name__])     # workers cannot import this test module

BASINS = Basins([[-1.0, 0.0], [1.0, 0.0]])
GRID = {"lr": [0.05, 0.1], "batch_size": [1, 4]}
SETTINGS = {"w0": [0.0, 0.0], "n_particles": 32, "t_end": 1.0, "seeds": 2}     # 8 points of 10-20 steps
CALLS = {"n": 0, "interrupt_at": None}


def run(loss, **kwargs):
    return sd.sweep(loss, sd.SGD, GRID, observe=[sd.analysis.basin_fractions_of(BASINS), *kwargs.pop("extra", [])],
                    **{**SETTINGS, "progress": False, **kwargs})


@dataclass(frozen=True)
class DieOnce(Observable):
    """Kills the worker process that first runs it (SIGKILL: no clean-up), once per marker file."""

    marker: str

    def __call__(self, result, point):
        import multiprocessing
        if multiprocessing.parent_process() is not None and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return {}


@dataclass(frozen=True)
class CountCalls(Observable):
    """Counts the points run in this process; sends Ctrl-C (SIGINT) to it at call ``interrupt_at``."""

    def __call__(self, result, point):
        CALLS["n"] += 1
        if CALLS["n"] == CALLS["interrupt_at"]:
            os.kill(os.getpid(), signal.SIGINT)
        return {}


def _kernel_cache():
    """``(hits, misses)`` of Numba's on-disk cache over sdesim's kernels loaded in this process."""
    from numba.core.dispatcher import Dispatcher
    hits = misses = 0
    for name, module in list(sys.modules.items()):
        if name.startswith("sdesim"):
            for value in vars(module).values():
                if isinstance(value, Dispatcher):
                    hits += sum(value.stats.cache_hits.values())
                    misses += sum(value.stats.cache_misses.values())
    return hits, misses


@pytest.fixture(scope="module")
def client():
    """A real scheduler and two worker processes on loopback."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.ERROR) as cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def serial(sym):
    return run(sym)


def test_points_are_simulate_runs(sym, serial):
    """Each point is exactly ``simulate`` at its coordinates and seed, reduced by the observables."""
    assert dict(serial.sizes) == {"lr": 2, "batch_size": 2, "seed": 2, "dim": 2, "basin": 2}
    assert serial["lr"].values.tolist() == [0.05, 0.1] and serial["batch_size"].dtype.kind == "i"
    res = sd.simulate(sym, sd.SGD(0.1, 4), [0.0, 0.0], 32, t_end=1.0, seed=1)
    point = serial.sel(lr=0.1, batch_size=4, seed=1)
    np.testing.assert_array_equal(point["mean"], res.final.mean(axis=0))
    np.testing.assert_array_equal(point["variance"], res.final.var(axis=0, ddof=1))
    assert point["loss"] == res.loss[-1].mean() and point["diverged"] == 0
    np.testing.assert_array_equal(point["fraction"], sd.analysis.basin_fractions(res.final, BASINS).fractions)
    config = __import__("json").loads(serial.attrs["sweep"])
    assert config["over"] == GRID and config["seeds"] == [0, 1] and config["n_particles"] == 32


def test_identical_on_every_executor(sym, serial, client):
    """Serial, a pool of 2 processes, a LocalCluster of 2 worker processes (as a Client and by its address):
    bit-identical datasets; the workers loaded the parent's compiled kernels from the cache (no compilation)."""
    xr.testing.assert_identical(run(sym, executor="processes", workers=2), serial)
    xr.testing.assert_identical(run(sym, executor=client), serial)
    xr.testing.assert_identical(run(sym, executor=client.scheduler.address), serial)
    for hits, misses in client.run(_kernel_cache).values():
        assert hits > 0 and misses == 0


def test_killed_worker_is_rerun(sym, serial, client, tmp_path):
    """A Dask worker process killed mid-sweep (SIGKILL) is restarted and its point rerun; a killed pool
    process breaks the pool, which is restarted: the datasets equal the undisturbed one."""
    for executor, name in ((client, "dask"), ("processes", "pool")):
        marker = tmp_path / name
        ds = run(sym, executor=executor, workers=2 if executor == "processes" else None,
                 extra=[DieOnce(str(marker))])
        assert marker.exists()                                   # a worker did die
        xr.testing.assert_equal(ds, serial)


def test_interrupted_sweep_resumes_missing_points(sym, serial, tmp_path):
    """Ctrl-C at the 5th point leaves the 4 finished points on disk; resume=True computes only the
    other 4 and gives the undisturbed dataset. Without resume, an existing store is refused."""
    store = tmp_path / "sweep.zarr"
    # Ctrl-C raises KeyboardInterrupt even where the test process was started with SIGINT ignored
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _interrupt_and_resume(sym, serial, store)
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupt_and_resume(sym, serial, store):
    CALLS.update(n=0, interrupt_at=5)
    with pytest.raises(KeyboardInterrupt):
        run(sym, store=store, extra=[CountCalls()])
    assert int(xr.open_zarr(store)["done"].sum()) == 4
    CALLS.update(n=0, interrupt_at=None)
    ds = run(sym, store=store, resume=True, extra=[CountCalls()])
    assert CALLS["n"] == 4
    xr.testing.assert_equal(ds, serial)
    xr.testing.assert_equal(xr.open_zarr(store).drop_vars("done").load(), serial)
    with pytest.raises(ConfigError, match="exists"):
        run(sym, store=store, extra=[CountCalls()])
    with pytest.raises(ConfigError, match="different sweep.*seeds"):
        run(sym, store=store, resume=True, extra=[CountCalls()], seeds=3)


@pytest.mark.parametrize("over, fixed, match", [
    ({"learning_rate": [0.1]}, None, "unknown name 'learning_rate'"),
    ({"lr": []}, None, "lr is empty"),
    ([("lr", [0.1]), ("lr", [0.2])], None, "'lr' swept twice"),
    ({"lr": [0.1]}, {"lr": 0.2}, "'lr' swept twice"),
    ({"seed": [0, 1]}, None, "seeds="),
    ({"lr": [0.1, 0.1]}, None, "repeat"),
    ({"lr": 0.1}, None, "must be a list"),
    ({"lr": [0.1, -0.1]}, None, "at lr=-0.1.*lr must be positive"),
    ({"lr": [0.1], "sampling": ["shuffle"]}, None, "at lr=0.1, sampling='shuffle'.*FiniteSumLoss"),
])
def test_bad_specifications_raise_before_anything_runs(sym, tmp_path, over, fixed, match):
    CALLS.update(n=0, interrupt_at=None)
    with pytest.raises(ConfigError, match=match):
        sd.sweep(sym, sd.SGD, over, fixed=fixed, observe=[CountCalls()], store=tmp_path / "s.zarr",
                 **{**SETTINGS, "t_end": 0.2})
    assert CALLS["n"] == 0 and not (tmp_path / "s.zarr").exists()


def test_bad_options(sym):
    with pytest.raises(ConfigError, match="executor must be"):
        run(sym, executor="threads")
    with pytest.raises(ConfigError, match="resume=True needs store"):
        run(sym, resume=True)
    with pytest.raises(ConfigError, match="observe takes observables"):
        sd.sweep(sym, sd.SGD, GRID, observe=["fraction"], **SETTINGS)
    with pytest.raises(ConfigError, match="bound to the number 0.25.*Constant"):
        sd.sweep(sd.Loss("(x**2 - 1)**2 + c*x", c=0.25), sd.SGD(0.1), {"c": [0.0, 0.25]}, w0=[0.0], t_end=0.2)


def test_loss_parameters_and_zipped_names(sym):
    """A ``Loss`` parameter bound to a callable is swept (one kernel for every value): GD on (x - c)^2 from
    0.5 is x_k = c + (0.5 - c)(1 - 2 lr)^k. Zipped names share one dimension; run settings are swept too."""
    loss = sd.Loss("(x - c)**2", c=Constant(0.0))
    ds = sd.sweep(loss, sd.GD(0.1), {"c": [0.0, 1.0, 2.0]}, w0=[0.5], steps=10, progress=False)
    c = np.array([0.0, 1.0, 2.0])
    np.testing.assert_allclose(ds["mean"].isel(seed=0, dim=0), c + (0.5 - c) * 0.8**10, rtol=1e-13)
    ds = sd.sweep(sym, sd.SGD, {("lr", "batch_size"): [(0.05, 1), (0.1, 4)], "n_particles": [8, 16]},
                  w0=[0.0, 0.0], t_end=1.0, progress=False)
    assert ds["mean"].dims == ("lr_batch_size", "n_particles", "seed", "dim")
    assert ds["batch_size"].values.tolist() == [1, 4]
    res = sd.simulate(sym, sd.SGD(0.1, 4), [0.0, 0.0], 16, t_end=1.0)
    np.testing.assert_array_equal(ds["mean"].isel(lr_batch_size=1, seed=0).sel(n_particles=16),
                                  res.final.mean(axis=0))


def test_observables_equal_their_analyses(sym):
    """stationary_of, escape_times_of, sharpness_of and trajectories equal the analyses on the same run."""
    from sdesim.analysis import escape, sharpness, stationary
    obs = [sd.analysis.stationary_of(burn_in=0.5, record_every=2), sd.analysis.escape_times_of(BASINS, record_every=2),
           sd.analysis.sharpness_of(), trajectories(record_every=2)]
    ds = sd.sweep(sym, sd.SGD, {"lr": [0.1]}, fixed={"batch_size": 1}, w0=[-1.0, 0.0], n_particles=32, t_end=2.0,
                  observe=obs, progress=False).isel(lr=0, seed=0)
    res = sd.simulate(sym, sd.SGD(0.1, 1), [-1.0, 0.0], 32, t_end=2.0, record_every=2)
    st = stationary.stationary_statistics(res, burn_in=0.5)
    np.testing.assert_array_equal(ds["stationary_mean"], st.mean)
    np.testing.assert_array_equal(ds["stationary_cov"], st.covariance)
    times, observed = escape.escape_times(res, BASINS)
    assert ds["escape_fraction"] == observed.mean()
    if observed.any():
        assert ds["escape_time"] == escape.mean_escape_time(times, observed).mean
    assert ds["sharpness"] == sharpness.sharpness(sym, res.final).mean()
    np.testing.assert_array_equal(ds["w"], res.w)
    np.testing.assert_array_equal(ds["t"], res.t)


def test_phase_diagram_is_a_sweep(sym, serial):
    pd = sd.analysis.phase_diagram(sym, BASINS, [(0.05, 4), (0.1, 1)], w0=[0.0, 0.0], n_particles=32, t_end=1.0,
                                   seed=1)
    np.testing.assert_array_equal(pd.fractions[0], serial["fraction"].sel(lr=0.05, batch_size=4, seed=1))
    np.testing.assert_array_equal(pd.fractions[1], serial["fraction"].sel(lr=0.1, batch_size=1, seed=1))
    np.testing.assert_allclose(pd.temperature, [0.05 / 8, 0.05])


TOML = """
[loss]
expr = "(x**2 - 1)**2 + 2*y**2 + 0.5*x*y"

[simulation]
w0 = [0.0, 0.0]
n_particles = 32
t_end = 1.0

[[dynamics]]
type = "SGD"

[sweep]
lr = [0.05, 0.1]
batch_size = { geomspace = [1, 4, 2] }
seeds = 2
observe = [{ type = "basin_fractions", centers = [[-1.0, 0.0], [1.0, 0.0]] }]

[plots]
phase_diagram = { x = "batch_size", y = "lr", var = "fraction", basin = 1 }
"""


def test_experiment_file_on_a_scheduler(serial, client, tmp_path, capsys):
    """``sdesim run sweep.toml --scheduler ADDRESS`` writes the store and the figure; ``--resume`` on the
    finished store computes nothing; the dataset is the Python sweep's."""
    path = tmp_path / "sweep.toml"
    path.write_text(TOML)
    out = tmp_path / "out"
    assert cli.main(["run", str(path), "--out", str(out), "--scheduler", client.scheduler.address]) == 0
    assert "sweep of 8 points" in capsys.readouterr().out
    assert (out / "phase_diagram.png").exists() and (out / "experiment.resolved.json").exists()
    xr.testing.assert_equal(xr.open_zarr(out / "sweep.zarr").drop_vars("done").load(), serial)
    assert cli.main(["run", str(path), "--out", str(out), "--resume"]) == 0
    assert cli.main(["run", str(path), "--out", str(out)]) == 2                 # the store exists
    assert "--resume" in capsys.readouterr().err


@pytest.mark.parametrize("edit, match", [
    (("lr = [0.05, 0.1]", "lr = 0.1"), "must be a list of values"),
    (("lr = [0.05, 0.1]", "lr = []"), "empty"),
    (("lr = [0.05, 0.1]", "learning_rate = [0.1]"), "unknown name to sweep"),
    (('type = "SGD"', 'type = "SGD"\nlr = 0.1'), "both swept .* and fixed"),
    (("seeds = 2", "seeds = 0"), "seeds must be"),
    (('type = "basin_fractions"', 'type = "histogram"'), "observe: type must be"),
])
def test_experiment_file_errors(tmp_path, edit, match):
    path = tmp_path / "bad.toml"
    path.write_text(TOML.replace(*edit))
    with pytest.raises(ExperimentError, match=match):
        experiment.load(path)


def test_phase_diagram_plot(serial):
    """Geometric grids get log axes with full-width edge cells and labelled contours of constant lr/B;
    seeds are averaged; an unselected dimension is refused."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    lrs, Bs = [0.01, 0.02, 0.04], [1, 4, 16, 64]
    values = np.random.default_rng(0).random((3, 4, 2, 2))
    ds = xr.Dataset({"fraction": (("lr", "batch_size", "seed", "basin"), values)},
                    coords={"lr": lrs, "batch_size": Bs, "seed": [0, 1], "basin": [0, 1]})
    ax = sd.plot.phase_diagram(ds, x="batch_size", y="lr", var="fraction", basin=1, ax=plt.figure().gca())
    assert ax.get_xscale() == ax.get_yscale() == "log"
    edges = ax.collections[0].get_coordinates()
    np.testing.assert_allclose(edges[0, :, 0], [0.5, 2, 8, 32, 128])               # every cell 4x wide
    np.testing.assert_allclose(edges[:, 0, 1], [0.01 / 2**0.5, 0.01 * 2**0.5, 0.02 * 2**0.5, 0.04 * 2**0.5])
    np.testing.assert_allclose(ax.collections[0].get_array().reshape(3, 4),
                               ds["fraction"].sel(basin=1).mean("seed").values)
    assert any(t.get_text().startswith("lr/B=") for t in ax.texts)
    with pytest.raises(ConfigError, match="select or average the dimensions \\['basin'\\]"):
        sd.plot.phase_diagram(ds, var="fraction", ax=plt.figure().gca())
    ax = sd.plot.phase_diagram(serial, var="loss", ax=plt.figure().gca())           # two values: linear
    assert ax.get_xscale() == "linear"
    plt.close("all")
