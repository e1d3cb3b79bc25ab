"""Array modules of the Fokker-Planck device code path: ``xp`` and ``xsparse``.

`ArrayModules.cupy` bundles cupy / cupyx.scipy.sparse (``FokkerPlanck(...,
backend="cupy")``); `ArrayModules.numpy` bundles numpy / scipy.sparse, so the same
device code runs (and is tested) on the CPU. The Krylov solver is the project's
own (`krylov.gmres`), so no sparse-solver module is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import numpy as np

from sdesim.errors import BackendUnavailableError, ConfigError

BACKENDS = ("cpu", "cupy")
INSTALL = 'pip install "sdesim[gpu]"'


@dataclass(frozen=True)
class ArrayModules:
    """The array and sparse-matrix modules of one device."""

    name: str
    xp: ModuleType
    xsparse: ModuleType

    @classmethod
    def numpy(cls):
        import scipy.sparse

        return cls("numpy", np, scipy.sparse)

    @classmethod
    def cupy(cls):
        """cupy/cupyx on the current CUDA device; `BackendUnavailableError` without one."""
        try:
            import cupy
            import cupyx.scipy.sparse
        except ImportError as exc:
            raise BackendUnavailableError(f"backend 'cupy' needs CuPy ({INSTALL}): {exc}") from exc
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception:  # noqa: BLE001 (no driver, or a driver without a device)
            count = 0
        if count == 0:
            raise BackendUnavailableError(f"backend 'cupy' needs a CUDA device; none found ({INSTALL})")
        return cls("cupy", cupy, cupyx.scipy.sparse)

    def asarray(self, a):
        """``a`` as a float64 device array."""
        return self.xp.asarray(a, dtype=float)

    def csr(self, A):
        """A host SciPy sparse matrix as a device CSR matrix."""
        import scipy.sparse

        return self.xsparse.csr_matrix(scipy.sparse.csr_matrix(A))

    def to_host(self, a):
        """A NumPy copy of the device array ``a``."""
        return a.get() if hasattr(a, "get") else np.array(a)


def modules(backend):
    """``None`` for ``"cpu"``, the `ArrayModules` of ``"cupy"``, or ``backend`` itself if one."""
    if isinstance(backend, ArrayModules):
        return backend
    if backend == "cpu":
        return None
    if backend == "cupy":
        return ArrayModules.cupy()
    raise ConfigError(f"backend must be one of {BACKENDS} (or an ArrayModules); got {backend!r}")
