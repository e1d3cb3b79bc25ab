"""The counter-based streams of :mod:`sdesim.rng` as CUDA device functions.

One source of truth: each device function is the pure-Python body (``.py_func``) of
the ``njit`` function in :mod:`sdesim.rng`, with its calls rebound to the device
versions, compiled by ``numba.cuda.jit(device=True)``. The 32x32 -> 64-bit Philox
products are ``uint64`` multiplies of 32-bit words (CUDA's ``mul.wide.u32``), so a
GPU draws the same bits as the CPU for every ``(seed, stream, counter)``.

Floating-point agreement needs one more thing: NVVM contracts ``a * b + c`` into a
fused multiply-add by default (``-fma=1``), which rounds once instead of twice and
moves Box-Muller normals by up to 1e-15. :func:`no_fma` compiles the kernels with
``-fma=0``, as the CPU kernels are compiled (Numba contracts nothing without
``fastmath``), so the normals are bit-identical too. numba-cuda passes no contraction
option through ``cuda.jit``, so importing this module wraps its process-global
``nvvm.compile_ir`` once: the wrapper adds ``fma=False`` only while the compiling thread
is inside ``no_fma()`` (a ``threading.local`` flag), so kernels that other code compiles,
in this or another thread, keep NVVM's defaults.
"""

from __future__ import annotations

import math
import threading
import types
from contextlib import contextmanager

import numpy as np
from numba import cuda

from sdesim import rng
from sdesim.backends.cupy_backend import simulating

_ORDER = ("_philox_round", "philox4x32", "_log_unit", "_cos_sin_turn", "uniform", "normal_pair",
          "three_point")


def _divide(a, b):
    return a / b


def _numpy_for_cuda():
    """What the rng functions use of NumPy, as CUDA compiles it: scalar types, and ``sqrt``
    and ``divide`` as correctly rounded scalar operations (NumPy's ufuncs on scalars are
    not compiled for CUDA)."""
    shim = types.ModuleType("sdesim_cuda_numpy")
    shim.uint64, shim.int64, shim.float64 = np.uint64, np.int64, np.float64
    shim.sqrt = math.sqrt
    shim.divide = cuda.jit(device=True, inline="always")(_divide)
    return shim


def _device_functions():
    """The functions of :data:`_ORDER` as device functions, each calling the device versions."""
    bound = {"np": _numpy_for_cuda()}
    for name in _ORDER:
        py = getattr(rng, name).py_func
        namespace = dict(py.__globals__)
        namespace.update(bound)
        fn = types.FunctionType(py.__code__, namespace, py.__name__, py.__defaults__, py.__closure__)
        fn.__doc__ = py.__doc__
        bound[name] = cuda.jit(device=True, inline="always")(fn)
    return bound


_DEVICE = _device_functions()
philox4x32 = _DEVICE["philox4x32"]
uniform = _DEVICE["uniform"]
normal_pair = _DEVICE["normal_pair"]
three_point = _DEVICE["three_point"]

_FLAG = threading.local()


def _install_no_fma():
    """Wrap numba-cuda's ``nvvm.compile_ir`` once (idempotent): ``fma=False`` while this thread is in
    :func:`no_fma`, the caller's options otherwise. Not installed under the simulator (nothing is compiled)."""
    if simulating():
        return
    from numba.cuda.cudadrv import nvvm
    if getattr(nvvm.compile_ir, "_sdesim_no_fma", False):
        return
    original = nvvm.compile_ir

    def compile_ir(llvmir, **options):
        if getattr(_FLAG, "depth", 0):
            options["fma"] = False
        return original(llvmir, **options)

    compile_ir._sdesim_no_fma = True
    nvvm.compile_ir = compile_ir


@contextmanager
def no_fma():
    """Compile the CUDA kernels first launched by this thread in this block with NVVM's ``-fma=0``.

    Sets a thread-local flag read by the wrapper :func:`_install_no_fma` installed at import;
    re-entrant, and kernels compiled meanwhile by other threads keep their own options.
    """
    _FLAG.depth = getattr(_FLAG, "depth", 0) + 1
    try:
        yield
    finally:
        _FLAG.depth -= 1


_install_no_fma()
