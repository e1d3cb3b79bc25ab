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
``fastmath``), so the normals are bit-identical too.
"""

from __future__ import annotations

import math
import threading
import types
from contextlib import contextmanager

import numpy as np
from numba import cuda

from sdesim import rng

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

_LOCK = threading.Lock()


@contextmanager
def no_fma():
    """Compile the CUDA kernels first launched in this block with NVVM's ``-fma=0``.

    numba-cuda passes no contraction option through ``cuda.jit``; this wraps its
    ``nvvm.compile_ir`` for the duration of the block (a lock keeps it to one block
    at a time). Under the simulator nothing is compiled and this does nothing.
    """
    if simulating():
        yield
        return
    from numba.cuda.cudadrv import nvvm
    with _LOCK:
        original = nvvm.compile_ir

        def compile_ir(llvmir, **options):
            options["fma"] = False
            return original(llvmir, **options)

        nvvm.compile_ir = compile_ir
        try:
            yield
        finally:
            nvvm.compile_ir = original


def simulating() -> bool:
    """Whether numba.cuda is Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``)."""
    from numba.cuda.core import config
    return bool(config.ENABLE_CUDASIM)
