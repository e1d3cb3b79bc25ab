"""`FokkerPlanck` on a device (``backend="cupy"``): the same operator, solved there.

The operator, the multigrid hierarchy and the split factors are built once on the
CPU, then moved to the device (`arrays.ArrayModules`): the steady state and the
mean first-passage time by flexible right-preconditioned GMRES with a device
V-cycle (`krylov`), backward Euler and TR-BDF2 by one such solve per stage
(warm-started from the previous step), ``split`` by the chain kernel (`chains`),
the current (`operator.Operator.current` on the device's array module), KL,
entropy and free energy by device reductions. Closed-form steady states stay on
the CPU (``O(N)``). The device path has no direct solver: `FokkerPlanck` refuses
``solver="direct"`` with it. With `ArrayModules.numpy` the same code runs on
NumPy/SciPy, which is how it is tested.
"""

from __future__ import annotations

import numpy as np

from sdesim.errors import ShapeError, UnsupportedError

from . import steady
from .chains import ChainSolver
from .krylov import DeviceIterative
from .split import SplitStepper


class DeviceSplit:
    """`split.SplitStepper`'s factors on the device; ``step`` as there."""

    def __init__(self, operator, dt, scale, mods):
        host = SplitStepper(operator, dt, scale)
        if host.strided is None:
            raise UnsupportedError("method='split' on the device needs non-negative rates (the diffusion "
                                   "tensor's cross terms exceed the grid anisotropy); use backend='cpu'")
        self.mods = mods
        self.solvers = [ChainSolver(operator.grid.shape, link.offset, f, mods)
                        for link, f in zip(operator.links, host.factors)]

    def step(self, rho, reverse=False):
        rho = rho.copy()
        for solver in (self.solvers[::-1] if reverse else self.solvers):
            solver.solve(rho)
        return rho


def _xlogy(x, y, xp):
    return xp.where(x > 0, x * xp.log(xp.where(x > 0, y, 1.0)), 0.0)


class DeviceFokkerPlanck:
    """The solves and functionals of a `FokkerPlanck` (``fp``) on the device of ``mods``."""

    def __init__(self, fp, mods):
        self.fp, self.mods, self.xp = fp, mods, mods.xp

    def density(self, rho, name="rho"):
        """``rho`` (host or device) as a device array of the grid's shape."""
        if tuple(rho.shape) != self.fp.grid.shape:
            raise ShapeError(f"{name} has shape {tuple(rho.shape)}, the grid has shape {self.fp.grid.shape}")
        return self.mods.asarray(rho)

    def solve_steady_state(self, t):
        """``rho`` (host, flat, ``rho_p = 1``) from ``S v = e_p`` on the device (`steady`)."""
        fp = self.fp
        g = steady.reference_density(fp.potential, fp.diffusion, fp.grid.dim)
        factor = lambda M: DeviceIterative(M, self.mods, fp.tol)
        return self.mods.to_host(steady.solve(fp.matrix(t), steady.pin_cell(fp.potential), g, factor, fp.tol,
                                              self.mods.asarray, self.mods.csr))

    def mean_first_passage_time(self, A, free):
        """``tau`` (host, flat) with ``A tau_free = 1`` on the device, 0 on the target."""
        tau = np.zeros(free.size)
        if free.any():
            tau[free] = self.mods.to_host(DeviceIterative(A, self.mods, self.fp.tol).solve(np.ones(free.sum())))
        return tau

    def current(self, rho, scale):
        """The probability current, `operator.Operator.current` with the device's array module."""
        return self.mods.to_host(self.fp.operator.current(self.density(rho), scale, self.xp))

    def entropy(self, rho):
        r = self.density(rho)
        return -float(self.xp.sum(_xlogy(r, r, self.xp))) * self.fp.grid.cell_volume

    def kl(self, rho, rho_ref):
        r, ref = self.density(rho), self.density(rho_ref, "rho_ref")
        with np.errstate(divide="ignore"):
            return float(self.xp.sum(_xlogy(r, r / ref, self.xp))) * self.fp.grid.cell_volume

    def free_energy(self, rho, temperature):
        r = self.density(rho)
        energy = float(self.xp.sum(r * self.mods.asarray(self.fp.potential))) * self.fp.grid.cell_volume
        return energy - temperature * self.entropy(rho)
