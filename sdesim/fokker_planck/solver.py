"""`FokkerPlanck`: the density of the SGD diffusion on a grid."""

from __future__ import annotations

import dataclasses

import numpy as np

from sdesim.errors import ConfigError, LossKindError, ShapeError, UnsupportedError
from sdesim.losses.base import as_loss

from . import observables, steady
from .arrays import modules
from .balance import closed_form_steady_state
from .device import DeviceFokkerPlanck
from .diagnostics import check_density
from .diffusion import check_tensor
from .evolve import DensityResult, evolve
from .linsolve import METHODS as SOLVERS
from .linsolve import choose, factorize
from .operator import Operator


class FokkerPlanck:
    """Ito Fokker-Planck equation of ``dw = b(w) dt + G dW``, ``D = G G^T / 2``:

    .. math:: \\partial_t \\rho = \\nabla\\cdot\\big(-b\\rho + \\nabla\\cdot(D\\rho)\\big),
              \\qquad b = -\\nabla C \\text{ by default},

    on a `Grid` with zero-flux walls, discretised by conservative finite
    volumes with exponentially fitted (Scharfetter-Gummel) link fluxes (see
    `sdesim.fokker_planck.operator`). Time is ``t = k * lr``.

    Parameters
    ----------
    loss : Loss, QuadraticModel or FiniteSumLoss
        Needs ``value(W)`` (and ``grad`` unless ``drift`` is given); ``loss.dim == grid.dim``.
    temperature : float, optional
        Isotropic noise ``D = T I`` (SGD: ``T = lr / 2B``); steady state Gibbs ``exp(-C/T)``.
    grid : Grid
    diffusion : array (dim, dim) or callable, optional
        Constant ``D``, or ``W (..., dim) -> (..., dim, dim)`` state-dependent ``D(w)``
        (evaluated at the cell centres). Exactly one of ``temperature``/``diffusion``.
    drift : callable, optional
        ``W (..., dim) -> (..., dim)`` replacing ``-grad C`` (e.g. a modified drift);
        integrated along links with Simpson's rule. A drift equal to ``-grad C`` at
        the centres counts as ``-grad C`` (exact potential differences when ``D = T I``).
    noise_schedule : callable, optional
        ``t -> s(t) >= 0``, the diffusion at time ``t`` is ``s(t) D`` (a learning-rate
        schedule, ``s = lr(t) / lr``); used by `evolve`, the rest uses ``s(0)`` (or
        ``s(t)`` at their ``t``). Where ``s = 0`` (a warm-up) the drift alone moves
        the density (upwind rates).
    solver : {"auto", "direct", "iterative"}
        Sparse LU (SuperLU), or BiCGSTAB with algebraic multigrid (pyamg) / ILU; used
        where no closed form exists (`steady_state`) and by `evolve` except ``"split"``.
        A device backend always solves iteratively (GMRES with a device V-cycle,
        `sdesim.fokker_planck.krylov`): ``"auto"`` or ``"iterative"`` there.
    tol : float
        Relative residual of the iterative solver.
    backend : {"cpu", "cupy"} or ArrayModules
        ``"cupy"``: the linear solves, time steps and functionals run on a CUDA
        device (`sdesim.fokker_planck.device`; inputs and outputs stay NumPy
        arrays); `BackendUnavailableError` without CuPy or a device. An
        `ArrayModules` runs that device code path on its modules
        (``ArrayModules.numpy()``: on the CPU, as the tests do).

    Raises
    ------
    ShapeError
        ``loss.dim != grid.dim`` or a tensor of the wrong shape.
    ConfigError
        An unknown ``backend`` (or solver, or both/neither of temperature and diffusion).
    UnsupportedError
        ``solver="direct"`` with a device backend (no sparse LU there).
    NonPSDError
        ``D`` is not symmetric positive semi-definite at some cell.
    """

    def __init__(self, loss, temperature=None, *, grid, diffusion=None, drift=None,
                 noise_schedule=None, solver="auto", tol=1e-10, backend="cpu"):
        if (temperature is None) == (diffusion is None):
            raise ConfigError("give exactly one of temperature= and diffusion=")
        if solver not in SOLVERS:
            raise ConfigError(f"solver must be one of {SOLVERS}; got {solver!r}")
        mods = modules(backend)
        if mods is not None and solver == "direct":
            raise UnsupportedError(f"solver='direct' (sparse LU) runs on the CPU only; the {mods.name!r} "
                                   "backend solves iteratively (GMRES): use solver='auto' or 'iterative' "
                                   "with it, or backend='cpu' for the direct solver")
        loss = as_loss(loss)
        if loss.dim != grid.dim:
            raise ShapeError(f"the loss has dim {loss.dim}, the grid dim {grid.dim}")
        self.loss, self.grid = loss, grid
        self.solver, self.tol = solver, tol
        self.noise_schedule = noise_schedule
        X = grid.centers
        self.potential = np.asarray(loss.value(X), dtype=float)
        if temperature is not None:
            if not temperature > 0:
                raise ConfigError(f"temperature must be positive; got {temperature}")
            D = float(temperature) * np.eye(grid.dim)
        elif callable(diffusion):
            D = check_tensor(diffusion(X), grid.dim, where=X)
            if np.all(D == D.reshape(-1, grid.dim, grid.dim)[0]):
                D = D.reshape(-1, grid.dim, grid.dim)[0].copy()
        else:
            D = check_tensor(diffusion, grid.dim)
            if D.shape != (grid.dim, grid.dim):
                raise ShapeError(f"a constant diffusion must be ({grid.dim}, {grid.dim}); got {D.shape}")
        self.diffusion = D
        iso = D.ndim == 2 and np.all(D == D[0, 0] * np.eye(grid.dim))
        self.temperature = float(D[0, 0]) if iso else None
        potential = self.potential
        if drift is None:
            drift = lambda W: -np.asarray(loss.grad(W))
        elif not np.array_equal(np.asarray(drift(X), dtype=float), -np.asarray(loss.grad(X))):
            potential = None
        self.operator = Operator(grid, D, drift, potential)
        self.backend = "cpu" if mods is None else mods.name
        self._device = None if mods is None else DeviceFokkerPlanck(self, mods)

    @classmethod
    def from_dynamics(cls, loss, dynamics, grid, **kwargs):
        """The Fokker-Planck equation of a continuous dynamic, e.g. `SGDDiffusion`.

        Reads ``dynamics.drift(loss, W, 0)`` and ``dynamics.diffusion(loss, W, 0)``
        (``D = G G^T / 2``), the coefficients the particle simulator integrates.
        With a learning-rate ``schedule``, ``D`` is that of the dynamic without
        schedule and the diffusion at time ``t`` is ``D * temperature(t) / T``,
        ``T`` the temperature without schedule, so a warm-up (``lr(0) = 0``) starts
        from pure drift (the drift ``-grad C`` does not depend on ``lr`` in the
        time ``t = k * lr``).
        """
        if not (callable(getattr(dynamics, "drift", None)) and callable(getattr(dynamics, "diffusion", None))):
            raise LossKindError("from_dynamics needs a continuous dynamic with drift(loss, W, t) and "
                            f"diffusion(loss, W, t), e.g. SGDDiffusion; got {type(dynamics).__name__}")
        base = dynamics
        if getattr(dynamics, "schedule", None) is not None:
            base = dataclasses.replace(dynamics, schedule=None)
            T = base.temperature()
            kwargs.setdefault("noise_schedule", lambda t: dynamics.temperature(t) / T)
        return cls(loss, grid=grid, drift=lambda W: dynamics.drift(loss, W, 0.0),
                   diffusion=lambda W: base.diffusion(loss, W, 0.0), **kwargs)

    def _scale(self, t):
        if self.noise_schedule is None:
            return 1.0
        s = float(self.noise_schedule(t))
        if not (np.isfinite(s) and s >= 0):
            raise ConfigError(f"noise_schedule({t:g}) = {s}: the noise multiplier must be finite and >= 0")
        return s

    def _noisy_scale(self, t):
        """``s(t)``, or `ConfigError` where the noise vanishes (no steady state, no escape)."""
        s = self._scale(t)
        if s == 0 or not np.any(self.diffusion):
            raise ConfigError(f"the noise vanishes at t = {t:g} (e.g. during a warm-up): the density "
                              "collapses onto the minima; take t where the noise multiplier is positive")
        return s

    def matrix(self, t=0.0):
        """Sparse generator ``L`` (CSR, flat C order): ``d rho/dt = L rho``; columns sum to 0."""
        return self.operator.matrix(self._scale(t))

    def steady_state(self, closed_form=None, t=0.0):
        """Stationary density of ``L(t)``: ``L rho = 0``, ``sum(rho) * cell_volume = 1``.

        Closed form first (`balance.closed_form_steady_state`, ``O(N)``): where the
        discrete rates are in detailed balance (every 1D problem with positive
        rates; ``D = T I`` with ``b = -grad C``, whose null vector is the Gibbs
        vector ``exp(-C / T)`` at the centres; any other case whose axis-link
        product recursion passes the check) the candidate is returned after one
        matrix-free product confirms ``||L rho|| <= 1e-13 ||L||_F ||rho||``.
        Otherwise (non-equilibrium steady states) the linear system is solved
        with the equation at the cell of lowest loss replaced by ``rho = 1``
        there, then normalised; iterative solves work on the system symmetrised
        by ``g = exp(-C / T)``, ``T = tr(D) / dim`` (`steady.pinned_symmetrised`), starting
        from ``g`` itself. Warns `BoundaryMassWarning` / `ResolutionWarning`
        when the grid cannot represent the result.

        Parameters
        ----------
        closed_form : bool, optional
            ``None`` (default): closed form where the check passes, else solve.
            ``True``: closed form or `ValueError` (no detailed balance). ``False``:
            always solve the linear system.
        t : float
            Time at which the noise schedule is frozen; `ConfigError` where the
            noise vanishes.

        Returns
        -------
        array of grid.shape
        """
        s = self._noisy_scale(t)
        rho = None
        if closed_form is not False:
            potential = None
            if self.operator.mode == "potential":
                potential = self.potential / (self.diffusion[0, 0] * s)
            rho = closed_form_steady_state(self.operator, s, potential)
            if rho is None and closed_form:
                raise ConfigError("the discrete rates are not in detailed balance (the closed-form "
                                 "candidate fails the residual check): use closed_form=None or False")
        if rho is None:
            rho = self._solve_steady_state(t) if self._device is None else self._device.solve_steady_state(t)
        rho = self.grid.normalize(rho.reshape(self.grid.shape))
        check_density(self.grid, rho, "steady state")
        return rho

    def _solve_steady_state(self, t):
        L = self.matrix(t)
        p = steady.pin_cell(self.potential)
        if choose(self.solver, L.shape[0], self.grid.dim) != "iterative":
            A, b = steady.pinned_system(L, p)
            return factorize(A, self.solver, self.grid.dim, self.tol).solve(b)
        g = steady.reference_density(self.potential, self.diffusion, self.grid.dim)
        return steady.solve(L, p, g, lambda M: factorize(M, "iterative", self.grid.dim, self.tol), self.tol,
                            shape=self.grid.shape)

    def evolve(self, rho0, t_end, dt, record=None, method="backward-euler"):
        """Integrate the density from ``rho0`` to ``t_end``.

        Parameters
        ----------
        rho0 : array of grid.shape, or callable on ``grid.centers``
            Initial density, normalised to unit mass (``grid.gaussian``,
            ``grid.histogram(w0)`` build common ones).
        t_end, dt : float
            ``dt`` is shrunk to ``t_end / ceil(t_end / dt)``.
        record : int or sequence of float, optional
            Every ``record`` steps (and the final one), or at these times
            (multiples of ``dt``). Default: initial and final density.
        method : {"backward-euler", "tr-bdf2", "split"}
            Backward Euler (first order) keeps the density non-negative and
            ``KL(rho_t || rho_inf)`` non-increasing for every ``dt`` (M-matrix
            scheme); TR-BDF2 is second order and L-stable; ``split`` is backward
            Euler per lattice direction (``O(N)`` tridiagonal solves, first order,
            non-negative; its stationary state is off by ``O(dt)`` unless the
            noise is isotropic with a gradient drift).

        Returns
        -------
        DensityResult
        """
        rho0 = rho0(self.grid.centers) if callable(rho0) else rho0
        rho0 = self.grid.normalize(rho0)
        t, rho, meta = evolve(self.operator, self._scale, rho0.ravel(), t_end, dt, record,
                              method, self.solver, self.tol, None if self._device is None else self._device.mods)
        rho = rho.reshape(len(t), *self.grid.shape)
        check_density(self.grid, rho[-1], "density at t_end")
        return DensityResult(t, rho, self.grid, meta)

    def mean_first_passage_time(self, target, t=0.0):
        """Mean first-passage time ``tau(w)`` into ``target`` (absorbing).

        Solves the backward equation ``L(t)^T tau = -1`` off the target,
        ``tau = 0`` on it (``L^T`` is the generator of the discrete Markov
        chain), with zero-flux walls elsewhere.

        Parameters
        ----------
        target : bool array of grid.shape, or callable ``centres -> bool array``
        t : float
            Time at which the noise schedule is frozen; `ConfigError` where the
            noise vanishes.

        Returns
        -------
        array of grid.shape
        """
        mask = target(self.grid.centers) if callable(target) else target
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != self.grid.shape:
            raise ShapeError(f"target has shape {mask.shape}, the grid {self.grid.shape}")
        if not mask.any():
            raise ConfigError("the target region contains no grid cell")
        free = ~mask.ravel()
        A = (-self.operator.matrix(self._noisy_scale(t)).T).tocsr()[free][:, free]
        if self._device is not None:
            return self._device.mean_first_passage_time(A, free).reshape(self.grid.shape)
        tau = np.zeros(self.grid.size)
        if free.any():
            tau[free] = factorize(A.tocsr(), self.solver, self.grid.dim, self.tol).solve(np.ones(free.sum()))
        return tau.reshape(self.grid.shape)

    def current(self, rho, t=0.0):
        """Probability current ``J = b rho - div(D rho)`` at the centres, ``(*shape, dim)``.

        Built from the discrete link fluxes, so ``d rho/dt = -div J`` holds exactly
        on the links; zero for a Gibbs density with isotropic noise.
        """
        if self._device is not None:
            return self._device.current(rho, self._scale(t))
        return self.operator.current(self.grid.check_density(rho), self._scale(t))

    def marginal(self, rho, axis):
        """Marginal density on ``axis`` (int or tuple), see `observables.marginal`."""
        return observables.marginal(self.grid, rho, axis)

    def kl(self, rho, rho_ref):
        """``KL(rho || rho_ref) = int rho log(rho / rho_ref)``."""
        if self._device is not None:
            return self._device.kl(rho, rho_ref)
        return observables.kl(self.grid, rho, rho_ref)

    def entropy(self, rho):
        """``H(rho) = -int rho log rho``."""
        if self._device is not None:
            return self._device.entropy(rho)
        return observables.entropy(self.grid, rho)

    def free_energy(self, rho):
        """``F = E[C] - T H(rho)`` (isotropic noise only; ``T`` at ``t = 0``)."""
        if self.temperature is None:
            raise ConfigError("the free energy E[C] - T H needs isotropic noise D = T I; "
                             "use kl(rho, steady_state()) for anisotropic D")
        T = self.temperature * self._scale(0.0)
        if self._device is not None:
            return self._device.free_energy(rho, T)
        return observables.free_energy(self.grid, rho, self.potential, T)
