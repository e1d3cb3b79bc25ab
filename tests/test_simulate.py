"""``sd.simulate`` / ``sd.compare`` / ``Result``: API, shapes, clocks, recording,
files, reproducibility, backend agreement, divergence and bad input.

Everything here is exact (no statistics): the two backends draw the same
counter-based random numbers, so their trajectories agree to round-off (1e-12).
"""

import dataclasses
import json
import warnings

import numpy as np
import pytest

import sdesim as sd
from sdesim.errors import DivergenceError, FormatError, ShapeError
from sdesim.errors import DivergenceWarning, StepSizeWarning
from sdesim.integrators import bias

from cases import AGREE, BACKENDS, run

Z = 5.0      # standard errors allowed in statistical checks


# --- shapes, clocks, recording -------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_discrete_shapes_and_clock(sym, backend):
    res = run(sym, sd.SGD(lr=0.05, batch_size=2), backend, n=5, steps=23, record_every=5)
    # records steps 0, 5, ..., 20 and always the final step 23, at t = k * lr
    np.testing.assert_allclose(res.t, 0.05 * np.array([0, 5, 10, 15, 20, 23]), rtol=0, atol=1e-15)
    assert res.w.shape == (6, 5, 2) and res.loss.shape == (6, 5)
    assert res.n_particles == 5 and res.dim == 2
    np.testing.assert_array_equal(res.w[0], np.broadcast_to([0.5, 0.3], (5, 2)))
    np.testing.assert_allclose(res.loss, sym.value(res.w), rtol=1e-13)
    np.testing.assert_array_equal(res.diverged_at, -1)
    # a record is the state a shorter run ends in
    short = run(sym, sd.SGD(lr=0.05, batch_size=2), backend, n=5, steps=15, record_every=100)
    np.testing.assert_array_equal(short.w[-1], res.w[3])
    # record_every dividing the steps: no duplicate final record
    res = run(sym, sd.GD(lr=0.05), backend, n=2, steps=20, record_every=5)
    np.testing.assert_allclose(res.t, 0.05 * np.arange(0, 21, 5), atol=1e-15)
    # steps = 0: just the initial state
    res = run(sym, sd.GD(lr=0.05), backend, n=2, steps=0)
    assert res.w.shape == (1, 2, 2) and res.t.tolist() == [0.0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_discrete_t_end(sym, backend):
    res = sd.simulate(sym, sd.GD(lr=0.1), w0=[0.5, 0.3], t_end=2.0, record_every=4, backend=backend)
    assert res.metadata["n_steps"] == 20
    np.testing.assert_allclose(res.t, [0.0, 0.4, 0.8, 1.2, 1.6, 2.0], atol=1e-14)


@pytest.mark.parametrize("backend", BACKENDS)
def test_continuous_clock(sym, backend):
    dyn = sd.SGDDiffusion(lr=0.1, batch_size=1)
    res = sd.simulate(sym, dyn, w0=[0.5, 0.3], n_particles=3, t_end=1.0, dt=0.01, record_every=30,
                      backend=backend)
    np.testing.assert_allclose(res.t, [0.0, 0.3, 0.6, 0.9, 1.0], atol=1e-14)
    assert res.w.shape == (5, 3, 2)
    assert res.metadata["dt"] == pytest.approx(0.01) and res.metadata["n_steps"] == 100
    # default dt = lr / 10; dt is rounded so that t_end is hit exactly
    res = sd.simulate(sym, dyn, w0=[0.5, 0.3], t_end=0.5, backend=backend)
    assert res.metadata["dt"] == pytest.approx(0.01) and res.t[-1] == pytest.approx(0.5)
    res = sd.simulate(sym, dyn, w0=[0.5, 0.3], t_end=0.5, dt=0.03, backend=backend)
    assert res.metadata["n_steps"] == 17 and res.t[-1] == pytest.approx(0.5, abs=1e-14)
    # steps for a continuous dynamic: t_end = steps * dt
    res = sd.simulate(sym, dyn, w0=[0.5, 0.3], steps=40, dt=0.005, backend=backend)
    assert res.t[-1] == pytest.approx(0.2)


def test_flow_clock_and_per_particle_start(sym):
    w0 = np.array([[0.5, 0.3], [-0.2, 0.1], [1.5, -1.0]])
    res = sd.simulate(sym, sd.GradientFlow(), w0=w0, n_particles=3, t_end=1.0, dt=0.1, record_every=3)
    np.testing.assert_allclose(res.t, [0.0, 0.3, 0.6, 0.9, 1.0], atol=1e-14)
    np.testing.assert_array_equal(res.w[0], w0)
    # the loss decreases along gradient flow
    assert (np.diff(res.loss, axis=0) < 0).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_compare_aligned(sym, backend):
    dyns = [sd.GD(lr=0.1), sd.SGD(lr=0.05, batch_size=4), sd.GradientFlow(),
            sd.ModifiedFlow(lr=0.1, order=1), sd.SGDDiffusion(lr=0.1, batch_size=4)]
    results = sd.compare(sym, dyns, w0=[0.5, 0.3], n_particles=4, steps=20, backend=backend, seed=1)
    assert len(results) == len(dyns)
    for dyn, res in zip(dyns, results):
        assert res.t[0] == 0.0 and res.t[-1] == pytest.approx(2.0, abs=1e-12), dyn
        deterministic = isinstance(dyn, (sd.GD, sd.GradientFlow, sd.ModifiedFlow))
        assert res.w.shape[1:] == ((1, 2) if deterministic else (4, 2))   # deterministic lenses run once
        assert res.label == dyn.label
    assert results[1].metadata["n_steps"] == 40  # lr 0.05 over t = 2
    with pytest.raises(ValueError, match="t_end"):
        sd.compare(sym, [sd.GradientFlow()], w0=[0.5, 0.3], steps=10)


def test_compare_one_clock_and_deterministic_once(sym):
    """``record_dt``: every lens records at the same times; deterministic lenses run one particle
    (N of them from a distribution of starts), and ``broadcast`` gives N copies where needed."""
    dyns = [sd.GD(lr=0.1), sd.SGD(lr=0.05, batch_size=4), sd.GradientFlow(),
            sd.ModifiedFlow(lr=0.1, order=1), sd.SGDDiffusion(lr=0.1, batch_size=4)]
    results = sd.compare(sym, dyns, w0=[0.5, 0.3], n_particles=50, t_end=2.0, record_dt=0.5, seed=1)
    for dyn, res in zip(dyns, results):
        np.testing.assert_allclose(res.t, [0.0, 0.5, 1.0, 1.5, 2.0], rtol=0, atol=1e-12)
        assert res.n_particles == (1 if not isinstance(dyn, (sd.SGD, sd.SGDDiffusion)) else 50)
    sde = results[-1]
    assert 0.5 / sde.metadata["dt"] == pytest.approx(round(0.5 / sde.metadata["dt"]))   # dt divides record_dt
    gd = results[0].broadcast(50)
    assert gd.w.shape == (5, 50, 2) and (gd.w == results[0].w).all() and gd.diverged_at.shape == (50,)
    starts = np.random.default_rng(0).normal(size=(6, 2))
    assert sd.compare(sym, [sd.GD(lr=0.1)], w0=starts, n_particles=6, steps=3)[0].n_particles == 6


def test_record_dt_off_the_step_grid(sym):
    """A record_dt that is not a multiple of the step records at the nearest steps, within half a step."""
    res = sd.simulate(sym, sd.GD(lr=0.1), w0=[0.5, 0.3], t_end=1.0, record_dt=0.25)
    np.testing.assert_allclose(res.t, [0.0, 0.2, 0.5, 0.8, 1.0], atol=1e-12)   # 0.25 -> step 2 (rint), 0.75 -> 8
    assert np.all(np.abs(res.t[1:-1] - [0.25, 0.5, 0.75]) <= 0.05 + 1e-12)
    with pytest.raises(ValueError, match="record_every or record_dt"):
        sd.simulate(sym, sd.GD(lr=0.1), w0=[0.5, 0.3], steps=4, record_every=2, record_dt=0.2)
    with pytest.raises(ValueError, match="record_dt"):
        sd.simulate(sym, sd.GD(lr=0.1), w0=[0.5, 0.3], steps=4, record_dt=-1.0)


@pytest.fixture(scope="module")
def well_variance():
    """Stationary variance in the right well of C = (x^2 - 1)^2 at T = 1/32 (Gibbs, quadrature)."""
    x = np.linspace(0.0, 3.0, 300_001)
    p = np.exp(-(x**2 - 1) ** 2 * 32.0)
    m = np.sum(x * p) / np.sum(p)
    return float(np.sum((x - m) ** 2 * p) / np.sum(p))


def test_step_size_warning_and_auto_step(well_variance):
    """Euler-Maruyama at dt = 0.05 on curvature h = 8 (h dt = 0.4): the warning predicts +25% on the
    stationary variance, and the ensemble shows it (> +15%); at a fine step no warning; dt="auto"
    (1% tolerance) lands within 1% + 5 standard errors of the Gibbs variance.

    20000 particles from the minimum x = 1 (T = 1/32: no barrier crossing), variance time-averaged
    over 10 records after relaxation (1/(2h) = 0.06): SE from the spread of the 10 record variances."""
    loss = sd.Loss("(x**2 - 1)**2")
    dyn = sd.SGDDiffusion(lr=0.5, batch_size=8)                       # T = lr / 2B = 1/32
    kw = dict(w0=[1.0], n_particles=20_000, t_end=3.0, record_dt=0.2, seed=5)

    def variance(res):
        v = res.w[res.t >= 1.0, :, 0].var(axis=1)
        return v.mean(), v.std(ddof=1) / np.sqrt(len(v))

    with pytest.warns(StepSizeWarning, match=r"h dt = 0\.4.*\+25%"):
        coarse = sd.simulate(loss, dyn, dt=0.05, **kw)
    v, se = variance(coarse)
    predicted = float(bias.variance_ratio(sd.integrators.get("euler_maruyama"), 8 * 0.05)[0])      # 1.25
    # the local-quadratic prediction against the anharmonic well: measured 1.2455 +- 0.003
    assert abs(v / well_variance - predicted) < 0.02 + Z * se / well_variance, (v / well_variance, predicted)
    with warnings.catch_warnings():
        warnings.simplefilter("error", StepSizeWarning)
        sd.simulate(loss, dyn, dt=0.005, **kw)
        auto = sd.simulate(loss, dyn, dt="auto", **kw)
    assert auto.metadata["dt"] < 0.0026                               # 1% needs h dt <= 0.0198
    v, se = variance(auto)
    assert abs(v / well_variance - 1) < 0.01 + Z * se / well_variance, (v, se, well_variance)
    with pytest.raises(ValueError, match="auto"):
        sd.simulate(loss, sd.GD(lr=0.1), w0=[1.0], steps=3, dt="auto")


# --- files ---------------------------------------------------------------------------
def test_save_load_round_trip(tmp_path, sym):
    res = run(sym, sd.SGD(lr=0.05, batch_size=3), "numpy")
    path = res.save(tmp_path / "run")
    assert path.exists() and path.suffix == ".npz"
    back = sd.Result.load(path)
    for name in ("t", "w", "loss", "diverged_at"):
        np.testing.assert_array_equal(getattr(back, name), getattr(res, name))
    for key, value in res.metadata.items():
        assert back.metadata[key] == json.loads(json.dumps(value)), key
    # a wrong format version is refused with a readable error
    with np.load(path) as f:
        arrays = dict(f)
    meta = json.loads(str(arrays["metadata"]))
    meta["format_version"] = 99
    arrays["metadata"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(FormatError, match="version"):
        sd.Result.load(tmp_path / "bad.npz")


def test_to_xarray(sym):
    xr = pytest.importorskip("xarray")
    res = run(sym, sd.SGD(lr=0.05), "numpy")
    ds = res.to_xarray()
    assert isinstance(ds, xr.Dataset)
    assert ds["w"].dims == ("time", "particle", "dim")
    assert list(ds["dim"].values) == ["x", "y"]
    np.testing.assert_array_equal(ds["w"].values, res.w)


def test_metadata_reruns(sym):
    """The metadata names the loss, rebuilds the dynamic and reproduces the run."""
    dyn = sd.SGD(lr=0.05, batch_size=2, momentum=0.5, schedule=sd.schedules.Step(every=0.5, factor=0.5))
    res = run(sym, dyn, "numpy", seed=11)
    meta = json.loads(json.dumps(res.metadata))       # what a file keeps
    assert meta["loss"] == repr(sym)
    d = dict(meta["dynamic"])
    schedule = d.pop("schedule")
    sched = getattr(sd.schedules, schedule.pop("type"))(**schedule)
    rebuilt = getattr(sd, d.pop("type"))(schedule=sched, **d)
    assert rebuilt == dyn
    again = sd.simulate(sym, rebuilt, w0=meta["w0"], n_particles=meta["n_particles"],
                        steps=meta["n_steps"], record_every=meta["record_every"],
                        backend=meta["backend"], seed=meta["seed"], integrator=meta["integrator"],
                        bound=meta["bound"])
    np.testing.assert_array_equal(again.w, res.w)


# --- reproducibility -------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_seeds(fs, backend):
    dyn = sd.SGD(lr=0.05, batch_size=3)
    a, b, c = (run(fs, dyn, backend, seed=s).w for s in (5, 5, 6))
    np.testing.assert_array_equal(a, b)
    assert np.abs(a[-1] - c[-1]).min() > 0  # every particle moves differently
    # particles of one run are different streams
    assert len(np.unique(a[-1, :, 0])) == a.shape[1]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", ["sym-sgd-momentum", "sym-sde-weak2", "fs-shuffle", "fs-fixed",
                                  "fs-replacement", "qm-sgd", "qm-sgd-nesterov", "qm-exact-ou"])
def test_segments_do_not_change_numbers(losses, backend, case):
    """Segments of 7 steps (crossing epochs of 4 steps) give bit-identical results."""
    kind, dyn, kw = {
        "sym-sgd-momentum": ("symbolic", sd.SGD(lr=0.05, batch_size=2, momentum=0.9), {}),
        "sym-sde-weak2": ("symbolic", sd.SGDDiffusion(lr=0.05, batch_size=2), {"integrator": "weak2"}),
        "fs-shuffle": ("finite_sum", sd.SGD(lr=0.05, batch_size=3, sampling="shuffle"), {}),
        "fs-fixed": ("finite_sum", sd.SGD(lr=0.05, batch_size=3, sampling="fixed"), {}),
        "fs-replacement": ("finite_sum", sd.SGD(lr=0.05, batch_size=3, momentum=0.5), {}),
        "qm-sgd": ("quadratic", sd.SGD(lr=0.05, batch_size=2), {}),
        "qm-sgd-nesterov": ("quadratic", sd.SGD(lr=0.05, batch_size=2, momentum=0.9, nesterov=True), {}),
        "qm-exact-ou": ("quadratic", sd.SGDDiffusion(lr=0.5, batch_size=2, noise="anisotropic"),
                        {"integrator": "exact_ou"}),
    }[case]
    whole = run(losses[kind], dyn, backend, steps=30, record_every=3, **kw)
    parts = run(losses[kind], dyn, backend, steps=30, record_every=3, segment_steps=7, **kw)
    np.testing.assert_array_equal(parts.w, whole.w)
    np.testing.assert_array_equal(parts.t, whole.t)


def test_numba_thread_count(losses):
    """Numba results do not depend on the number of threads (600 particles: 3 chunks)."""
    numba = pytest.importorskip("numba")
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs 2 threads")
    cases = [("symbolic", sd.SGDDiffusion(lr=0.05, batch_size=2)),
             ("finite_sum", sd.SGD(lr=0.05, batch_size=3, sampling="shuffle")),
             ("quadratic", sd.SGD(lr=0.05, batch_size=2))]
    before = numba.get_num_threads()
    try:
        for kind, dyn in cases:
            out = []
            for threads in (1, 2):
                numba.set_num_threads(threads)
                out.append(run(losses[kind], dyn, "numba", n=600, steps=20).w)
            np.testing.assert_array_equal(out[0], out[1])
    finally:
        numba.set_num_threads(before)


# --- divergence ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def unstable():
    # lr * h_1 = 0.1 * 30 = 3 > 2: GD is unstable along w_1, |d_k| = 2^k |d_0|
    return sd.QuadraticModel(hessian=np.diag([30.0, 1.0]))


W0_DIV = np.array([[1.0, 1.0], [0.0, 1.0], [0.5, -1.0], [0.0, 0.3]])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["quadratic", "symbolic"])
def test_divergence(unstable, backend, kind):
    loss = unstable if kind == "quadratic" else sd.Loss("15*x**2 + 0.5*y**2")
    with pytest.warns(DivergenceWarning) as record:
        res = sd.simulate(loss, sd.GD(lr=0.1), w0=W0_DIV, n_particles=4, steps=40, backend=backend)
    message = str(record[0].message)
    # 2^k |d_0| > 1e8 first at k = 27 for d_0 = 1 and k = 28 for d_0 = 0.5
    assert "2 of 4 particles diverged" in message and "first at step 27" in message
    np.testing.assert_array_equal(res.diverged_at, [27, -1, 28, -1])
    np.testing.assert_array_equal(res.diverged, [True, False, True, False])
    steps = np.round(res.t / 0.1).astype(int)
    for p, k in ((0, 27), (2, 28)):
        assert np.isfinite(res.w[steps < k, p]).all()
        assert np.isnan(res.w[steps >= k, p]).all()
        assert np.isnan(res.loss[steps >= k, p]).all()
    assert np.isfinite(res.w[:, [1, 3]]).all() and np.isfinite(res.loss[:, [1, 3]]).all()
    np.testing.assert_allclose(res.w[-1, [1, 3]], [[0.0, 0.9**40], [0.0, 0.3 * 0.9**40]], rtol=1e-12)
    np.testing.assert_allclose(res.mean()[-1], [0.0, 0.65 * 0.9**40], rtol=1e-12)
    with pytest.raises(DivergenceError, match="2 of 4"):
        sd.simulate(loss, sd.GD(lr=0.1), w0=W0_DIV, n_particles=4, steps=40, backend=backend,
                    on_divergence="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sd.simulate(loss, sd.GD(lr=0.1), w0=W0_DIV, n_particles=4, steps=40, backend=backend,
                    on_divergence="ignore")


@pytest.mark.parametrize("backend", BACKENDS)
def test_divergence_bound_and_stable(unstable, backend):
    # a smaller bound stops earlier: 2^k > 1e3 first at k = 10
    with pytest.warns(DivergenceWarning, match="first at step 10"):
        res = sd.simulate(unstable, sd.GD(lr=0.1), w0=[1.0, 1.0], n_particles=2, steps=20, bound=1e3,
                          backend=backend)
    np.testing.assert_array_equal(res.diverged_at, [10, 10])
    # lr * h = 1.9 < 2 is stable: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sd.simulate(unstable, sd.GD(lr=0.19 / 3), w0=[1.0, 1.0], steps=200, backend=backend)


@pytest.mark.parametrize("kind", ["quadratic", "symbolic"])
@pytest.mark.parametrize("dyn,kw", [
    (sd.SGD(lr=0.12, batch_size=1, momentum=0.5), {"steps": 80}),        # heavy ball: unstable for lr h > 3
    (sd.SGD(lr=0.12, batch_size=1, momentum=0.5, nesterov=True), {"steps": 80}),
    (sd.SGD(lr=0.1, batch_size=1, nudge_k=1, nudge_factor=1.0), {"steps": 60}),
    (sd.SGDDiffusion(lr=0.1, batch_size=1), {"t_end": 6.0, "dt": 0.1, "integrator": "heun"})],
    ids=["momentum", "nesterov", "nudged", "sde-heun"])
def test_divergence_backends_agree(unstable, kind, dyn, kw):
    """Stochastic dynamics diverge at the same step on both backends, with the same NaN records."""
    loss = unstable if kind == "quadratic" else sd.Loss("15*x**2 + 0.5*y**2")
    out = []
    for backend in BACKENDS:
        with pytest.warns(DivergenceWarning):
            out.append(sd.simulate(loss, dyn, w0=W0_DIV, n_particles=4, backend=backend, seed=2, **kw))
    a, b = out
    assert (a.diverged_at > 0).sum() >= 2
    np.testing.assert_array_equal(b.diverged_at, a.diverged_at)
    np.testing.assert_array_equal(np.isnan(b.w), np.isnan(a.w))
    np.testing.assert_allclose(b.w, a.w, rtol=1e-12, atol=AGREE)


def test_flow_divergence():
    """Gradient flow on C = -x^4 blows up at t* = 1 / (8 x0^2): from x0 = 2 at t* = 1/32. That
    particle is stopped and reported (at the first step after t*), the other goes on exactly."""
    w0 = np.array([[0.1], [2.0]])
    with pytest.warns(DivergenceWarning, match="1 of 2 particles diverged.*first at step 4"):
        res = sd.simulate(sd.Loss("-x**4"), sd.GradientFlow(), w0=w0, n_particles=2, t_end=1.0, dt=0.01)
    np.testing.assert_array_equal(res.diverged_at, [-1, 4])
    exact = lambda t, x0: 1 / np.sqrt(1 / x0**2 - 8 * t)
    np.testing.assert_allclose(res.w[:4, 1, 0], exact(res.t[:4], 2.0), rtol=1e-8)
    assert np.isnan(res.w[4:, 1]).all()
    np.testing.assert_allclose(res.w[:, 0, 0], exact(res.t, 0.1), rtol=1e-8)
    # exponential growth past the bound: w = e^t > 1e8 first at t = 18.42, step 185
    with pytest.warns(DivergenceWarning, match="first at step 185"):
        res = sd.simulate(sd.Loss("-x**2/2"), sd.GradientFlow(), w0=np.array([[0.0], [1.0]]), n_particles=2,
                          t_end=20.0, dt=0.1)
    np.testing.assert_array_equal(res.diverged_at, [-1, 185])


# --- bad input -------------------------------------------------------------------------
def test_bad_input(sym, fs, qm):
    gd = sd.GD(lr=0.1)
    with pytest.raises(ShapeError, match="w0"):
        sd.simulate(sym, gd, w0=[0.1, 0.2, 0.3], steps=2)
    with pytest.raises(ShapeError, match="w0"):
        sd.simulate(sym, gd, w0=np.zeros((3, 2)), n_particles=4, steps=2)
    with pytest.raises(ShapeError, match="w0"):
        sd.simulate(sym, gd, w0=[np.nan, 0.0], steps=2)
    with pytest.raises(ValueError, match="backend"):
        sd.simulate(sym, gd, w0=[0.1, 0.2], steps=2, backend="fortran")
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="record_every"):
            sd.simulate(sym, gd, w0=[0.1, 0.2], steps=2, record_every=bad)
    with pytest.raises(ValueError, match="dt"):
        sd.simulate(sym, gd, w0=[0.1, 0.2], steps=2, dt=0.01)
    with pytest.raises(ValueError, match="steps"):
        sd.simulate(sym, gd, w0=[0.1, 0.2])
    with pytest.raises(ValueError, match="steps"):
        sd.simulate(sym, gd, w0=[0.1, 0.2], steps=2.5)
    with pytest.raises(ValueError, match="seed"):
        sd.simulate(sym, gd, w0=[0.1, 0.2], steps=2, seed=-1)
    with pytest.raises(ValueError, match="on_divergence"):
        sd.simulate(sym, gd, w0=[0.1, 0.2], steps=2, on_divergence="panic")
    with pytest.raises(ValueError, match="t_end"):
        sd.simulate(sym, sd.SGDDiffusion(lr=0.1), w0=[0.1, 0.2], dt=0.01)
    with pytest.raises(ValueError, match="sampling"):
        sd.SGD(lr=0.1, sampling="stratified")
    with pytest.raises(ValueError, match="noise"):
        sd.SGDDiffusion(lr=0.1, noise="pink")
    with pytest.raises(ValueError, match="lr"):
        sd.GD(lr=-0.1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_integrator(sym, fs, backend):
    sde = sd.SGDDiffusion(lr=0.1, batch_size=2)
    with pytest.raises(ValueError, match="integrator"):
        sd.simulate(sym, sde, w0=[0.1, 0.2], t_end=0.1, integrator="rk4", backend=backend)
    # Heun and weak-2 are for additive noise only (Heun would converge to Stratonovich)
    hess = sd.SGDDiffusion(lr=0.1, batch_size=2, noise="anisotropic", noise_covariance="hessian")
    for integrator in ("heun", "weak2"):
        with pytest.raises(ValueError, match="additive"):
            sd.simulate(sym, hess, w0=[0.1, 0.2], t_end=0.1, integrator=integrator, backend=backend)
        with pytest.raises(ValueError, match="additive"):
            sd.simulate(fs, sd.SGDDiffusion(lr=0.1, batch_size=2, noise="anisotropic"), w0=[0.1, 0.2],
                        t_end=0.1, integrator=integrator, backend=backend)
    # exact OU steps need a quadratic model
    with pytest.raises(ValueError):
        sd.simulate(sym, sde, w0=[0.1, 0.2], t_end=0.1, integrator="exact_ou", backend=backend)


def test_notebook_summary_and_progress(sym, capsys):
    """``Result`` shows a short summary (repr and Jupyter HTML); ``progress=True`` shows a bar."""
    res = sd.simulate(sym, sd.SGD(lr=0.05, batch_size=2), w0=[0.5, 0.3], n_particles=3, steps=40,
                      segment_steps=10, progress=True)
    assert "3 particles x 2 dims" in repr(res) and "0 diverged" in repr(res)
    html = res._repr_html_()
    assert html.startswith("<table>") and "SGD (lr=0.05, B=2)" in html and "final mean loss" in html
    err = capsys.readouterr().err
    assert "40/40" in err
    sd.simulate(sym, sd.SGD(lr=0.05, batch_size=2), w0=[0.5, 0.3], steps=40, progress=False)
    assert capsys.readouterr().err == ""
