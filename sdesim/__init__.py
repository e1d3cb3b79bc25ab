"""sdesim: stochastic dynamics of SGD on loss landscapes.

One description of a training setup (a loss, an algorithm with learning rate
``lr`` and batch size ``B``) seen through four lenses: discrete SGD/GD, gradient
and modified flows, the SGD diffusion (temperature ``lr / 2B``) and its
Fokker-Planck density. Time is ``t = k * lr`` for every dynamic.

Heavy submodules are imported lazily so ``import sdesim`` stays fast.
"""

from importlib import import_module

from sdesim._threading import configure as _configure_threading

_configure_threading()  # before any Numba kernel: a threading layer that coexists with PyTorch

__version__ = "0.1.0"

_LAZY = {
    "Loss": "sdesim.losses.symbolic",
    "FiniteSumLoss": "sdesim.losses.finite_sum",
    "QuadraticModel": "sdesim.losses.quadratic",
    "NetworkLoss": "sdesim.nets.network_loss",
    "catalog": "sdesim.losses.catalog",
    "GD": "sdesim.dynamics",
    "SGD": "sdesim.dynamics",
    "GradientFlow": "sdesim.dynamics",
    "ModifiedFlow": "sdesim.dynamics",
    "SGDDiffusion": "sdesim.dynamics",
    "schedules": "sdesim.dynamics.schedules",
    "simulate": "sdesim.simulation",
    "compare": "sdesim.simulation",
    "sweep": "sdesim.sweeps",
    "Result": "sdesim.result",
    "FokkerPlanck": "sdesim.fokker_planck",
    "Grid": "sdesim.fokker_planck",
    "analysis": "sdesim.analysis",
    "plot": "sdesim.plot",
    "nets": "sdesim.nets",
    "errors": "sdesim.errors",
    "integrators": "sdesim.integrators",
    "backends": "sdesim.backends",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    try:
        module_name = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'sdesim' has no attribute {name!r}") from None
    module = import_module(module_name)
    value = getattr(module, name, module)
    globals()[name] = value
    return value


def __dir__():
    return __all__
