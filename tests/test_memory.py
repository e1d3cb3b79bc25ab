"""Memory of ``simulate``: NumPy allocations against the ensemble's size, and what crosses to the host.

The peak is measured with ``tracemalloc``, which sees NumPy's buffers: deterministic,
not a timing. The device path is checked without a GPU: a backend whose states are
``Device`` arrays (NumPy arrays behind a wrapper that, like CuPy's, refuses implicit
conversion to NumPy), counting what ``to_host`` copies.
"""

import tracemalloc

import numpy as np
import pytest

import sdesim as sd
from sdesim import simulation
from sdesim.analysis.escape import FirstPassage
from sdesim.backends import get_backend
from sdesim.backends.base import State
from sdesim.backends.numpy_backend import NumpyBackend
from sdesim.reducers import BasinCounts, Histogram, Reducer, RunningMoments

LOSS = "(x**2-1)**2 + 2*y**2 + 0.5*x*y"


def peak_numpy_bytes(fn):
    """``(result, peak bytes traced)`` of ``fn()``."""
    tracemalloc.start()
    try:
        out = fn()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def symbolic_run(n, **kw):
    return lambda: sd.simulate(sd.Loss(LOSS), sd.SGDDiffusion(lr=0.1), [-1.0, 0.0], n, steps=4, dt=0.01,
                               keep="final", progress=False, **kw)


def quadratic_run(n, **kw):
    qm = sd.QuadraticModel(hessian=np.array([[2.0, 0.3], [0.3, 0.5]]), w_star=np.array([0.5, -0.2]),
                           noise_factor=np.eye(2))
    return lambda: sd.simulate(qm, sd.SGD(lr=0.05), [0.0, 0.0], n, steps=4,
                               keep="final", progress=False, **kw)


def finite_sum_run(n, **kw):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 2))
    loss = sd.FiniteSumLoss("0.5*(w0*x0 + w1*x1 - y)**2", params=("w0", "w1"),
                            data={"x": X, "y": X @ np.array([1.0, -0.5])})
    return lambda: sd.simulate(loss, sd.SGD(lr=0.05, batch_size=4), [0.0, 0.0], n, steps=4, keep="final",
                               progress=False, **kw)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("run", [symbolic_run, quadratic_run, finite_sum_run])
def test_peak_final_run(run, backend):
    """``keep="final"`` of 1e6 2-D particles: the peak of NumPy allocations stays within 2.2 ensembles plus
    what is recorded (the final states and their losses). Before the memory work it was 9 (Numba) and 12.6
    (NumPy) ensembles: a velocity without momentum, copies of the start, stacked records, full-size masks
    and temporaries."""
    n = 1_000_000
    run(64, backend=backend)()                  # compile or load the kernels outside the measurement
    res, peak = peak_numpy_bytes(run(n, backend=backend))
    ensemble = n * 2 * 8
    recorded = res.w.nbytes + res.loss.nbytes
    assert res.w.shape == (1, n, 2)
    assert peak <= 2.2 * ensemble + recorded, (peak / ensemble, recorded / ensemble)


def test_peak_with_reducers():
    """Reducers add one segment's records and their own temporaries, not copies of the run."""
    n = 1_000_000
    run = symbolic_run(n, reducers=[RunningMoments(), Histogram(np.linspace(-2, 2, 9))])
    symbolic_run(64)()
    res, peak = peak_numpy_bytes(run)
    ensemble = n * 2 * 8
    per_segment = 2 * ensemble                  # the segment size rule: at most ~5e6 numbers, >= one record
    assert peak <= 2.2 * ensemble + res.w.nbytes + res.loss.nbytes + 2 * per_segment, peak / ensemble


# --- the device path, without a device ------------------------------------------------
class Device(np.lib.mixins.NDArrayOperatorsMixin):
    """A NumPy array "on the device": operations stay wrapped; ``np.asarray`` refuses, as CuPy does."""

    def __init__(self, a):
        self.a = a

    def __array__(self, *args, **kwargs):
        raise TypeError("implicit conversion of a Device array to NumPy: use to_host")

    def __array_namespace__(self):
        return DEVICE_XP

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return _wrap(getattr(ufunc, method)(*_unwrap(inputs), **_unwrap(kwargs)))

    def get(self):
        return self.a.copy()

    def __getitem__(self, index):
        return _wrap(self.a[_unwrap(index)])

    def __setitem__(self, index, value):
        self.a[_unwrap(index)] = _unwrap(value)

    def __len__(self):
        return len(self.a)

    def __bool__(self):
        return bool(self.a)

    def __getattr__(self, name):
        attr = getattr(self.a, name)
        return (lambda *a, **k: _wrap(attr(*_unwrap(a), **_unwrap(k)))) if callable(attr) else _wrap(attr)


def _unwrap(x):
    if isinstance(x, Device):
        return x.a
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap(v) for v in x)
    if isinstance(x, dict):
        return {k: _unwrap(v) for k, v in x.items()}
    return x


def _wrap(x):
    if isinstance(x, np.ndarray):
        return Device(x)
    if isinstance(x, tuple):
        return tuple(_wrap(v) for v in x)
    return x


class DeviceModule:
    """The array module of ``Device`` arrays: NumPy's functions on unwrapped arguments, results wrapped."""

    def __getattr__(self, name):
        f = getattr(np, name)
        return lambda *a, **k: _wrap(f(*_unwrap(a), **_unwrap(k)))


DEVICE_XP = DeviceModule()


class DeviceBackend(NumpyBackend):
    """The NumPy reference stepping ``Device`` states in place; ``to_host`` logs what it copies."""

    name = "device"
    xp = DEVICE_XP

    def __init__(self):
        self.copied = []

    def start(self, plan, W0):
        inner = super().start(plan, W0)
        return State(W=Device(inner.W), V=None if inner.V is None else Device(inner.V),
                     diverged_at=Device(inner.diverged_at), scratch={"inner": inner})

    def advance(self, plan, state, k0, k1, record):
        return Device(super().advance(plan, state.scratch["inner"], k0, k1, record))

    def to_host(self, a):
        if isinstance(a, Device):
            self.copied.append((a.shape, a.dtype))
            return a.get()
        return np.asarray(a)


class Spy(Reducer):
    """Notes the type and times of every record it is fed."""

    name = "spy"
    any_array = True

    def __init__(self):
        self.seen = []

    def update(self, t, w):
        self.seen += [(float(s), type(w)) for s in t]

    def result(self):
        return {}


@pytest.fixture
def device(monkeypatch):
    backend = DeviceBackend()
    monkeypatch.setattr(simulation, "get_backend", lambda name: backend if name == "device" else get_backend(name))
    return backend


def _reducers():
    return [Spy(), RunningMoments(), Histogram(np.linspace(-2, 2, 9)), BasinCounts([[-1.0, 0.0], [1.0, 0.0]])]


def _run(backend, reducers=(), **kw):
    return sd.simulate(sd.Loss(LOSS), sd.SGD(lr=0.05, noise_covariance=0.5 * np.eye(2)), [-1.0, 0.0], 300,
                       steps=30, record_every=3, segment_steps=7, backend=backend, reducers=reducers,
                       progress=False, seed=4, **kw)


def _same(a, b):
    np.testing.assert_array_equal(a.t, b.t)
    np.testing.assert_array_equal(a.w, b.w)
    np.testing.assert_array_equal(a.loss, b.loss)
    np.testing.assert_array_equal(a.diverged_at, b.diverged_at)
    for name, out in b.reduced.items():
        for key, v in out.items():
            np.testing.assert_array_equal(a.reduced[name][key], v)


def test_device_final_only_the_final_state_crosses(device):
    """keep="final": the reducers see every record as device arrays, the final state and the divergence steps
    are all that ``to_host`` copies, and every number equals the NumPy backend's."""
    reducers = _reducers()
    res = _run("device", reducers, keep="final")
    assert device.copied == [((300, 2), np.float64), ((300,), np.int64)]
    assert reducers[0].seen == [(k * 0.05, Device) for k in range(0, 31, 3)]
    assert isinstance(res.w, np.ndarray)
    _same(res, _run("numpy", _reducers(), keep="final"))


def test_device_all_records_cross_once(device):
    """keep="all": each segment's records cross once (no state between records), then the final one."""
    res = _run("device", keep="all")
    assert device.copied[-2:] == [((300, 2), np.float64), ((300,), np.int64)]
    assert sum(shape[0] for shape, _ in device.copied[:-2]) == len(res.t) - 1
    _same(res, _run("numpy", keep="all"))


def test_device_arrays_stay_on_the_device(device, tmp_path):
    """device_arrays=True: ``w`` and ``loss`` stay ``Device`` arrays; ``on_host``, ``save`` and the summary convert."""
    res = _run("device", _reducers(), keep="all", device_arrays=True)
    ref = _run("numpy", _reducers(), keep="all")
    assert isinstance(res.w, Device) and isinstance(res.loss, Device)
    assert isinstance(res.diverged_at, np.ndarray)
    assert not any(shape[0] == len(res.t) for shape, _ in device.copied)      # never all the records at once
    _same(res.on_host(), ref)
    np.testing.assert_array_equal(res.mean().get(), ref.mean())
    np.testing.assert_array_equal(res.covariance().get(), ref.covariance())
    assert {**res.summary(), "backend": "numpy"} == ref.summary()
    _same(sd.Result.load(res.save(tmp_path / "run")), ref)


@pytest.mark.parametrize("dynamic", [
    sd.SGDDiffusion(lr=0.1),
    sd.SGD(lr=0.05, momentum=0.5, nesterov=True, noise_covariance=0.5 * np.eye(2)),
])
def test_numpy_blocks_change_no_number(monkeypatch, dynamic):
    """The NumPy backend steps particles in blocks of ``ROWS``: blocks of 7 give the numbers of one block."""
    from sdesim.backends import numpy_backend

    def run():
        return sd.simulate(sd.Loss(LOSS), dynamic, [-1.0, 0.0], 50, steps=12, dt=0.01 if dynamic.continuous else None,
                           backend="numpy", progress=False, seed=2)
    whole = run()
    monkeypatch.setattr(numpy_backend, "ROWS", 7)
    np.testing.assert_array_equal(run().w, whole.w)


def test_numpy_blocks_keep_each_minibatch_order(monkeypatch):
    """Reshuffled minibatches keep one epoch order per block of particles: the same batches as one block."""
    from sdesim.backends import numpy_backend
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 2))
    loss = sd.FiniteSumLoss("0.5*(w0*x0 + w1*x1 - y)**2", params=("w0", "w1"),
                            data={"x": X, "y": X @ np.array([1.0, -0.5])})

    def run():
        return sd.simulate(loss, sd.SGD(lr=0.05, batch_size=3, sampling="shuffle"), [0.0, 0.0], 50, steps=10,
                           backend="numpy", progress=False, seed=2)
    whole = run()
    monkeypatch.setattr(numpy_backend, "ROWS", 7)
    np.testing.assert_array_equal(run().w, whole.w)
    compiled = sd.simulate(loss, sd.SGD(lr=0.05, batch_size=3, sampling="shuffle"), [0.0, 0.0], 50, steps=10,
                           backend="numba", seed=2, progress=False)
    np.testing.assert_allclose(whole.w, compiled.w, rtol=1e-12, atol=1e-14)     # the kernel's batches


def test_device_first_passage(device):
    """FirstPassage reduces on the device: ``target`` gets ``Device`` arrays, the times stay there between
    segments, and ``result()`` gives exactly the NumPy backend's times (here some particles never pass)."""
    seen = []

    def target(W):
        seen.append(type(W))
        return W[..., 0] >= -0.93

    on_device, on_host = FirstPassage(target=target), FirstPassage(target=lambda W: W[..., 0] >= -0.93)
    _run("device", [on_device], keep="final")
    _run("numpy", [on_host], keep="final")
    assert set(seen) == {Device} and isinstance(on_device.times, Device)
    got, want = on_device.result(), on_host.result()
    assert 0 < want["observed"].sum() < 300
    np.testing.assert_array_equal(got["times"], want["times"])
    np.testing.assert_array_equal(got["observed"], want["observed"])


def test_device_arrays_must_be_bool():
    with pytest.raises(sd.errors.ConfigError, match="device_arrays"):
        symbolic_run(4, device_arrays="no")()
