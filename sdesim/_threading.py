"""Numba's threading layer, chosen so that sdesim's parallel kernels and PyTorch share a process.

Numba's default layer here is OpenMP (the system's GNU ``libgomp``), and PyTorch's CPU
build carries its own ``libgomp``: once a Numba parallel kernel has run, two OpenMP
runtimes spin-wait for the same cores, and torch's operations (``torch.set_num_threads(2)``)
become 10-100x slower (a CNN Hessian-vector product: 0.7 s -> 18 s). The ``workqueue``
layer (Numba's own thread pool, no OpenMP) does not clash and runs the simulator's
compiled kernels as fast (``docs/net_vs_theory.md``, PyTorch section); the small parallel
kernels the NumPy reference backend calls per step on finite sums run about 20% slower
under it. So it is chosen only where PyTorch is installed. It aborts the process when two
Python threads launch parallel kernels at once, so sdesim launches its parallel kernels
through :func:`launch`, one at a time per process under that layer (threads that call
``simulate`` or a finite-sum loss concurrently take turns inside the kernels).

:func:`configure` runs at ``import sdesim``, before any kernel: where PyTorch is installed it sets
``NUMBA_THREADING_LAYER=workqueue`` (and ``numba.config.THREADING_LAYER`` if Numba
is already imported) unless the user chose a layer already
(``NUMBA_THREADING_LAYER`` in the environment, or ``numba.config.THREADING_LAYER``
set to anything but ``"default"``). Without PyTorch, Numba's default stays.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading

LAYER = "workqueue"
LOCK = threading.RLock()


def configure(layer=LAYER) -> None:
    """Select ``layer`` for Numba's parallel kernels unless a layer was chosen (module docstring)."""
    if "NUMBA_THREADING_LAYER" in os.environ or importlib.util.find_spec("torch") is None:
        return
    numba = sys.modules.get("numba")
    if numba is not None and numba.config.THREADING_LAYER != "default":
        return
    os.environ["NUMBA_THREADING_LAYER"] = layer  # what Numba reads at import and on reloading its config
    if numba is not None:
        numba.config.THREADING_LAYER = layer


def launch(kernel, *args):
    """``kernel(*args)`` for a parallel Numba kernel: under the ``workqueue`` layer, one at a time."""
    if active_layer() != "workqueue":
        return kernel(*args)
    with LOCK:
        return kernel(*args)


def active_layer() -> str:
    """The layer Numba runs parallel kernels on: the configured one, or what ``"default"`` resolved to
    (tbb, omp, else workqueue; ``"workqueue"`` until the first parallel launch has resolved it)."""
    import numba
    layer = numba.config.THREADING_LAYER
    if layer in ("default", "safe", "threadsafe", "forksafe"):
        try:
            return numba.threading_layer()
        except ValueError:                     # no parallel kernel has run yet: assume the unsafe one
            return "workqueue"
    return layer
