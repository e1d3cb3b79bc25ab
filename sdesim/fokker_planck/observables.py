"""Functionals of densities on a grid: marginals, entropy, KL, free energy."""

from __future__ import annotations

import numpy as np


def _xlogy(x, y):
    x = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, x * np.log(np.where(x > 0, y, 1.0)), 0.0)


def marginal(grid, rho, axis):
    """Marginal density on the kept ``axis`` (int or tuple of ints).

    ``rho_marg(x_axis) = int rho dx_others``: the other axes are summed and
    multiplied by their spacings, so the result has unit mass on its own axes.
    """
    rho = grid.check_density(rho)
    keep = (axis,) if np.ndim(axis) == 0 else tuple(axis)
    keep = tuple(a % grid.dim for a in keep)
    others = tuple(i for i in range(grid.dim) if i not in keep)
    out = rho.sum(axis=others) * float(np.prod(grid.spacing[list(others)]))
    return out.transpose([sorted(keep).index(k) for k in keep])


def entropy(grid, rho):
    """Differential entropy ``H(rho) = -int rho log rho``."""
    return -float(np.sum(_xlogy(rho, rho)) * grid.cell_volume)


def kl(grid, rho, rho_ref):
    """Relative entropy ``KL(rho || rho_ref) = int rho log(rho / rho_ref)``.

    ``0 log 0 = 0``; infinite when ``rho`` has mass where ``rho_ref`` vanishes.
    """
    rho = grid.check_density(rho)
    rho_ref = grid.check_density(rho_ref, "rho_ref")
    with np.errstate(divide="ignore"):
        return float(np.sum(_xlogy(rho, rho / rho_ref)) * grid.cell_volume)


def free_energy(grid, rho, potential, temperature):
    """Free energy ``F = E[C] - T H(rho) = int rho C + T int rho log rho``.

    Along the isotropic Fokker-Planck flow ``F(rho_t) = T KL(rho_t || rho_Gibbs) - T log Z``
    decreases monotonically.
    """
    rho = grid.check_density(rho)
    energy = float(np.sum(rho * potential) * grid.cell_volume)
    return energy - temperature * entropy(grid, rho)
