"""Execution backends: one module each, behind the contract of :mod:`sdesim.backends.base`.

A new backend is a module defining ``backend`` (a :class:`~sdesim.backends.base.Backend`)
and one line in :data:`REGISTRY` (or a call to :func:`register`).
"""

from __future__ import annotations

from importlib import import_module

from sdesim.errors import BackendUnavailableError, ConfigError

REGISTRY = {
    "numpy": "sdesim.backends.numpy_backend",
    "numba": "sdesim.backends.numba_backend",
    "cupy": "sdesim.backends.cupy_backend",
}


def register(name: str, module: str):
    """Register the backend defined in ``module`` (its attribute ``backend``) under ``name``."""
    REGISTRY[name] = module


def get_backend(name: str):
    """The backend registered under ``name``; raises when it is unknown or unavailable here."""
    if name not in REGISTRY:
        raise ConfigError(f"unknown backend {name!r}; choose one of {sorted(REGISTRY)}")
    try:
        backend = import_module(REGISTRY[name]).backend
    except ImportError as exc:
        raise BackendUnavailableError(f"backend {name!r} cannot be imported: {exc}") from exc
    ok, why = backend.available()
    if not ok:
        hint = f" ({backend.install})" if backend.install else ""
        raise BackendUnavailableError(f"backend {name!r} is not available: {why}{hint}")
    return backend
