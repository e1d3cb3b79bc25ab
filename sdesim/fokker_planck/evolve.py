"""Implicit time stepping of the discretised Fokker-Planck equation."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from sdesim.errors import ConfigError

from .device import DeviceSplit
from .krylov import DeviceIterative
from .linsolve import factorize
from .split import SplitStepper

METHODS = ("backward-euler", "tr-bdf2", "split")
_GAMMA = 2.0 - np.sqrt(2.0)


@dataclass(frozen=True)
class DensityResult:
    """Densities recorded along an evolution.

    Attributes
    ----------
    t : array (T,)
        Times, in the units ``t = k * lr`` shared with particle `Result`\\ s.
    rho : array (T, *grid.shape)
        Densities (cell averages, unit mass) at the times ``t``.
    grid : Grid
        ``grid.axes``/``grid.edges`` place ``rho`` on the particles' axes;
        ``grid.histogram(result.w[k])`` bins an ensemble on the same cells.
    metadata : dict
        ``method``, ``dt``, ``steps``, ``solver``.
    """

    t: np.ndarray
    rho: np.ndarray
    grid: object
    metadata: dict = field(default_factory=dict)

    def mass(self) -> np.ndarray:
        """Mass at every recorded time, shape ``(T,)``."""
        return self.rho.reshape(len(self.t), -1).sum(axis=1) * self.grid.cell_volume


def record_steps(record, n_steps, dt):
    """Step indices to record: every ``record`` steps (int) or at the given times."""
    if record is None:
        return np.array([0, n_steps])
    if np.ndim(record) == 0:
        k = int(record)
        if k < 1:
            raise ConfigError(f"record must be a positive step count; got {record}")
        return np.unique(np.r_[np.arange(0, n_steps + 1, k), n_steps])
    times = np.asarray(record, dtype=float)
    steps = np.rint(times / dt).astype(int)
    if np.any(np.abs(steps * dt - times) > 1e-9 * max(1.0, n_steps * dt)) or np.any(steps < 0) \
            or np.any(steps > n_steps):
        raise ConfigError("record times must be multiples of dt within [0, t_end]")
    return np.unique(steps)


def evolve(operator, scale, rho0, t_end, dt, record, method, solver, tol, mods=None):
    """Step ``d rho/dt = L(s(t)) rho`` from ``rho0`` (flat) to ``t_end``.

    ``operator.matrix(s)`` is the generator with diffusion scaled by ``s`` and
    ``scale(t)`` gives ``s``, taken at the end of a backward-Euler step and at
    the middle of a TR-BDF2 step; the factorisation is rebuilt only when ``s``
    changes. Backward Euler solves ``(I - dt L) rho_{n+1} = rho_n``; TR-BDF2
    (``gamma = 2 - sqrt 2``) solves twice per step with the same matrix
    ``I - (1 - 1/sqrt 2) dt L``:

    .. math::
        (I - \\tfrac{\\gamma}{2} dt L) \\rho_\\gamma = (I + \\tfrac{\\gamma}{2} dt L) \\rho_n, \\quad
        (I - \\tfrac{1-\\gamma}{2-\\gamma} dt L) \\rho_{n+1}
        = \\frac{\\rho_\\gamma - (1-\\gamma)^2 \\rho_n}{\\gamma (2-\\gamma)}.

    ``split``: backward Euler per lattice direction (`split.SplitStepper`).
    With ``mods`` (`arrays.ArrayModules`) the steps run on that device
    (`device.DeviceSplit`, `krylov.DeviceIterative`); the records come back as NumPy.
    """
    if method not in METHODS:
        raise ConfigError(f"method must be one of {METHODS}; got {method!r}")
    if not (t_end > 0 and dt > 0):
        raise ConfigError(f"need t_end > 0 and dt > 0; got t_end={t_end}, dt={dt}")
    n_steps = max(1, int(np.ceil(t_end / dt - 1e-9)))
    dt = t_end / n_steps
    keep = record_steps(record, n_steps, dt)
    n = rho0.size
    eye = sp.identity(n, format="csr")
    c = (1.0 - 1.0 / np.sqrt(2.0)) * dt if method == "tr-bdf2" else dt
    cached = {}

    def system(s):
        if cached.get("s") != s:
            if method == "split":
                stepper = SplitStepper(operator, dt, s) if mods is None else DeviceSplit(operator, dt, s, mods)
                cached.update(s=s, L=None, solver=stepper)
            elif mods is None:
                L = operator.matrix(s)
                cached.update(s=s, L=L, solver=factorize(eye - c * L, solver, operator.grid.dim, tol))
            else:
                L = operator.matrix(s)
                cached.update(s=s, L=mods.csr(L), solver=DeviceIterative(eye - c * L, mods, tol))
        return cached["L"], cached["solver"]

    host = (lambda a: a.copy()) if mods is None else mods.to_host
    rho = np.asarray(rho0, dtype=float).ravel() if mods is None else mods.asarray(np.ravel(rho0))
    keep_set = set(keep.tolist())
    out = [host(rho)] if keep[0] == 0 else []
    for k in range(1, n_steps + 1):
        if method == "backward-euler":
            _, lin = system(scale(k * dt))
            rho = lin.solve(rho, x0=rho)
        elif method == "split":
            rho = system(scale(k * dt))[1].step(rho, reverse=k % 2 == 0)
        else:
            L, lin = system(scale((k - 0.5) * dt))
            stage = lin.solve(rho + c * (L @ rho), x0=rho)
            rho = lin.solve((stage - (1 - _GAMMA) ** 2 * rho) / (_GAMMA * (2 - _GAMMA)), x0=stage)
        if k in keep_set:
            out.append(host(rho))
    meta = {"method": method, "dt": dt, "steps": n_steps, "solver": solver}
    return keep * dt, np.array(out), meta
