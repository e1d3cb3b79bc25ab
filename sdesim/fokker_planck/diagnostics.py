"""Warnings about what a grid cannot represent: mass at the boundary, unresolved scales."""

from __future__ import annotations

import warnings

import numpy as np

from sdesim.errors import BoundaryMassWarning, ResolutionWarning

BOUNDARY_MASS_TOL = 1e-6
RESOLUTION_LOG_JUMP = 2.0
RESOLUTION_LEVEL = 0.05


def check_density(grid, rho, what="density"):
    """Warn when ``rho`` has boundary mass above `BOUNDARY_MASS_TOL` or is under-resolved.

    Resolution: over neighbouring cells with the larger value above
    ``RESOLUTION_LEVEL * max(rho)``, the largest ``|log(rho_c' / rho_c)|`` must stay below `RESOLUTION_LOG_JUMP`: a Gaussian of
    standard deviation ``sigma = sqrt(T / C'')`` passes for spacings ``h < 0.8 sigma``.
    """
    rho = np.asarray(rho)
    total = float(np.sum(np.abs(rho)))
    if total == 0:
        return
    frac = float(np.sum(np.abs(rho[grid.boundary_mask()]))) / total
    if frac > BOUNDARY_MASS_TOL:
        warnings.warn(f"the {what} carries a fraction {frac:.2e} of its mass in the boundary cells; "
                      "the zero-flux walls distort it: enlarge the domain", BoundaryMassWarning,
                      stacklevel=3)
    level = RESOLUTION_LEVEL * float(rho.max())
    jump = 0.0
    for i in range(grid.dim):
        a, b = np.swapaxes(rho, 0, i)[:-1], np.swapaxes(rho, 0, i)[1:]
        hi, lo = np.maximum(a, b), np.maximum(np.minimum(a, b), np.finfo(float).tiny)
        big = hi > level
        if np.any(big):
            jump = max(jump, float(np.max(np.log(hi[big] / lo[big]))))
    if jump > RESOLUTION_LOG_JUMP:
        warnings.warn(f"the grid does not resolve the {what}: it changes by a factor {np.exp(jump):.3g} "
                      "between neighbouring cells (the temperature length scale, sqrt(T / C'') "
                      "near a minimum, spans about a cell or less); refine the grid", ResolutionWarning, stacklevel=3)
