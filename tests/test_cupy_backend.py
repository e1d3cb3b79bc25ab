"""The GPU backend ``"cupy"`` without a GPU: its kernels under Numba's CUDA simulator.

The simulator must be switched on (``NUMBA_ENABLE_CUDASIM=1``) before ``numba.cuda`` is
first imported, so the cases run in one subprocess (``tests/_cuda_worker.py``: 12
particles, 24 steps or 8 for finite sums and top-k models, every case of its table) that reports per case the support the
backend declares and, for compiled cases, the largest difference of the recorded states

- from the NumPy reference: at most ``AGREE = 1e-12`` (the same counter-based random
  numbers; the rest is floating-point reassociation);
- from the Numba CPU kernels: exactly zero (the GPU kernels perform the same operations
  in the same order); for flows (``integrator="rk4"``, ``*-rk4`` cases), which the Numba
  backend runs on the reference, at most ``AGREE`` as well;

for two launch configurations (4 and 32 threads per block) and one run in segments of 7
steps whose host-side rotations go in blocks of 5 particles (``cupy_backend.ROWS``), with
the same divergence steps. The float32 run stays within ``FLOAT32 = 1e-5``
relative of the float64 reference: 24 steps of float32 rounding (unit roundoff 6e-8) give
at most a few 1e-7 (2.6e-6 where particles run off to the bound), so 1e-5 is a bound with a
margin, not a fit. A ``gpu``-marked test runs the same table on a real device (skipped
without one).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import _cuda_worker  # the case table (importing it imports nothing heavy)
import numpy as np
import pytest
from cases import AGREE

import sdesim as sd
from sdesim.backends.cupy_backend import backend as gpu
from sdesim.errors import BackendUnavailableError, ConfigError, UnsupportedError

WORKER = Path(__file__).with_name("_cuda_worker.py")

UNSUPPORTED = {                      # case -> what the reason names
    "sym-hessian-noise": "per-particle eigendecomposition",
    "sym-nudged": "per-particle eigendecomposition",
    "fs-sde-aniso": "per-particle eigendecomposition",
    "sym-milstein": "Milstein",
    "sym-flow": "integrator='rk4'",
    "fs-flow-rk4": "symbolic losses and quadratic models only",
    "qm-modified": "Hessian-gradient products",
}
FLOAT32 = 1e-5
DIVERGING = [name for name in _cuda_worker.cases() if "-diverges" in name]
COMPILED = [name for name in _cuda_worker.cases() if name not in UNSUPPORTED]


def run_worker(env_extra, timeout):
    env = {**os.environ, **env_extra}
    proc = subprocess.run([sys.executable, str(WORKER)], check=False, env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=WORKER.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def simulated():
    return run_worker({"NUMBA_ENABLE_CUDASIM": "1"}, timeout=600)


@pytest.mark.parametrize("case", COMPILED)
def test_compiled_kernels_agree(simulated, case):
    out = simulated[case]
    assert out["level"] == "compiled", out["reason"]
    assert out["stepper"] == "compiled"
    assert max(out["errors"]) <= AGREE, out["errors"]
    assert max(out["from_numba"]) <= (AGREE if "-rk4" in case else 0.0), out["from_numba"]
    assert all(out["diverged_agree"])
    assert out["float32_error"] <= FLOAT32 and out["float32_diverged_agree"]
    if case in DIVERGING:
        assert out["n_diverged"] > 0
    else:
        assert out["n_diverged"] == 0 and out["moved"] > 1e-3


@pytest.mark.parametrize("case", list(UNSUPPORTED))
def test_unsupported_is_declared(simulated, case):
    """What has no GPU kernel is ``unsupported`` with the reason, and ``simulate`` raises naming it."""
    out = simulated[case]
    assert out["level"] == "unsupported"
    assert UNSUPPORTED[case] in out["reason"] and "backend='numba'" in out["reason"]
    assert out["reason"] in out["raised"]


def test_unavailable_without_a_device(sym):
    """Without the simulator and without CuPy (or a device) the backend says why and what to install."""
    ok, why = gpu.available()
    if ok:
        pytest.skip("a CUDA device (or the simulator) is available here")
    assert why in ("cupy is not installed", "no CUDA device", "numba-cuda is not installed")
    with pytest.raises(BackendUnavailableError, match=r'pip install "sdesim\[gpu\]"'):
        sd.simulate(sym, sd.GD(lr=0.1), w0=[0.1, 0.2], steps=2, backend="cupy")


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_float32_runs_on_the_gpu_only(sym, backend):
    with pytest.raises(UnsupportedError, match="float32 runs on the cupy backend only"):
        sd.simulate(sym, sd.GD(lr=0.1), w0=[0.1, 0.2], steps=2, backend=backend, dtype="float32")


@pytest.mark.parametrize("dtype", ["float16", "int32", "bogus", 3])
def test_dtype_is_validated(sym, dtype):
    with pytest.raises(ConfigError, match="dtype must be 'float64' or 'float32'"):
        sd.simulate(sym, sd.GD(lr=0.1), w0=[0.1, 0.2], steps=2, backend="numpy", dtype=dtype)


def _device_count():
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # noqa: BLE001 (cupy missing, no driver, no device)
        pytest.skip(f"no CUDA device: {type(exc).__name__}: {exc}")


@pytest.mark.gpu
def test_on_a_device():
    """The same table on a real GPU: within ``AGREE`` of the reference (transcendental functions of a
    loss, and the normal CDF of weak-2's three-point variables, are the device's own)."""
    if not _device_count():
        pytest.skip("no CUDA device")
    report = run_worker({"NUMBA_ENABLE_CUDASIM": "0"}, timeout=900)
    for case in COMPILED:
        out = report[case]
        assert out["level"] == "compiled", (case, out["reason"])
        assert max(out["errors"]) <= AGREE and all(out["diverged_agree"]), (case, out)
        assert out["float32_error"] <= FLOAT32, (case, out)
    assert np.all([report[c]["level"] == "unsupported" for c in UNSUPPORTED])


def test_no_fma_is_per_thread(monkeypatch):
    """``no_fma()`` adds ``fma=False`` to NVVM's options only for compilations of the thread inside it (nested
    too); other threads and code outside keep their options. The wrapper is installed once."""
    import threading

    from numba.cuda.cudadrv import nvvm

    from sdesim.backends import cuda_rng

    seen = []
    monkeypatch.setattr(nvvm, "compile_ir", lambda llvmir, **options: seen.append((llvmir, options)))
    cuda_rng._install_no_fma()
    cuda_rng._install_no_fma()                       # idempotent: one wrapper
    other = threading.Thread(target=lambda: nvvm.compile_ir("other", opt=3))
    nvvm.compile_ir("before", opt=3)
    with cuda_rng.no_fma():
        with cuda_rng.no_fma():
            nvvm.compile_ir("nested", opt=3)
        other.start()
        other.join()
        nvvm.compile_ir("inside", opt=3)
    nvvm.compile_ir("after", opt=3)
    assert dict(seen) == {"before": {"opt": 3}, "nested": {"opt": 3, "fma": False}, "other": {"opt": 3},
                          "inside": {"opt": 3, "fma": False}, "after": {"opt": 3}}
