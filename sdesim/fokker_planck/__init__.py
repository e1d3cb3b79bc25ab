"""Fokker-Planck densities of the SGD diffusion on a grid.

`Grid` (grid.py), the exponentially fitted finite-volume operator
(diffusion.py: tensor checks and lattice decomposition; operator.py: assembly),
linear solvers (linsolve.py; the steady-state system and its Gibbs symmetrisation:
steady.py; its geometric multigrid on the tensor grid: multigrid.py), time stepping (evolve.py), functionals (observables.py), warnings
(diagnostics.py), the device code path of ``backend="cupy"`` (arrays.py, krylov.py,
chains.py, device.py) and the `FokkerPlanck` front end (solver.py).
"""

from sdesim.errors import NonPSDError, PositivityWarning

from .diagnostics import BoundaryMassWarning, ResolutionWarning
from .evolve import DensityResult
from .grid import Grid
from .linsolve import SolverError
from .solver import FokkerPlanck

__all__ = ["BoundaryMassWarning", "DensityResult", "FokkerPlanck", "Grid", "NonPSDError",
           "PositivityWarning", "ResolutionWarning", "SolverError"]
