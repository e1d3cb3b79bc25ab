"""Analyses of ensembles (``Result``) and of loss landscapes, each with its theory.

One module per job; every name below is importable as ``sdesim.analysis.<name>``
(modules load on first use):

- ``sharpness``: top Hessian eigenvalues along trajectories, the ``2 / lr`` line;
- ``stationary``: late-time mean/covariance with standard errors, Lyapunov predictions;
- ``basins``: basins of attraction of a set of minima;
- ``escape``: first-passage and escape times with standard errors;
- ``kramers``: their theory, Eyring-Kramers and the exact 1D MFPT, and Arrhenius fits;
- ``phase``: fractions of runs ending in each basin over ``(lr, B)``, Gibbs occupations;
- ``snr``: gradient signal-to-noise along training;
- ``paths``: interpolation, model averaging, nudged elastic band;
- ``convergence``: log-log order fits;
- ``circulation``: angular velocity and probability current of non-equilibrium states;
- ``lanczos``: top eigenpairs of matrix-free symmetric operators (``sdesim.linalg.lanczos``);
- ``*_of``: the analyses as observables of sweeps (``sd.sweep(..., observe=[basin_fractions_of(basins)])``),
  defined in ``sdesim.sweeps.observables``.

``sharpness`` and ``lanczos`` name the modules (Python binds a package attribute to its
submodule on import); their functions are ``sharpness.sharpness`` and ``lanczos.lanczos``.
"""

from importlib import import_module

_MODULES = ("sharpness", "stationary", "basins", "escape", "kramers", "phase", "snr", "paths", "convergence",
            "circulation", "lanczos")

_LAZY = {
    "hessian_eigenvalues": "sharpness", "hvp_eigenvalues": "sharpness", "sharpness_along": "sharpness",
    "stability_threshold": "sharpness",
    "StationaryStats": "stationary", "stationary_statistics": "stationary", "lyapunov_covariance": "stationary",
    "stationary_variance_1d": "stationary", "density_statistics": "stationary", "variance_ratio_discrete_sde": "stationary",
    "Basins": "basins",
    "first_passage_times": "escape", "escape_times": "escape", "FirstPassage": "escape",
    "EscapeEstimate": "escape", "mean_escape_time": "escape",
    "kramers_time": "kramers", "mfpt_1d": "kramers", "ArrheniusFit": "kramers", "fit_arrhenius": "kramers",
    "BasinFractions": "phase", "basin_fractions": "phase", "basin_masses": "phase", "PhaseDiagram": "phase", "phase_diagram": "phase",
    "gibbs_basin_probabilities": "phase",
    "gradient_noise_trace": "snr", "gradient_snr": "snr", "snr_along": "snr",
    "interpolate": "paths", "interpolation_barrier": "paths", "Averaging": "paths", "average": "paths",
    "MinimumEnergyPath": "paths", "nudged_elastic_band": "paths",
    "OrderFit": "convergence", "fit_order": "convergence", "assert_order": "convergence",
    "Circulation": "circulation", "angular_velocity": "circulation", "angular_velocity_theory": "circulation",
    "angular_velocity_density": "circulation",
    "stationary_current": "circulation",
    # observables of sweeps (sdesim.sweeps.observables): analyses that reduce each run to numbers
    "basin_fractions_of": "sdesim.sweeps.observables", "stationary_of": "sdesim.sweeps.observables",
    "first_passage_of": "sdesim.sweeps.observables", "escape_times_of": "sdesim.sweeps.observables",
    "sharpness_of": "sdesim.sweeps.observables",
}

__all__ = sorted(set(_LAZY) | set(_MODULES))


def __getattr__(name):
    """Load ``name`` (a function or class, or a submodule) on first use."""
    if name in _LAZY:
        module = _LAZY[name]
        value = getattr(import_module(module if "." in module else f"{__name__}.{module}"), name)
    elif name in _MODULES:
        value = import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return __all__
