"""How continuous dynamics are stepped: SDE schemes, and flow integrators (adaptive Dormand-Prince, RK4)."""

from sdesim.errors import ConfigError
from sdesim.integrators.base import AffineStep, Integrator
from sdesim.integrators.dopri5 import Dopri5
from sdesim.integrators.euler_maruyama import EulerMaruyama
from sdesim.integrators.heun import StochasticHeun
from sdesim.integrators.milstein import Milstein
from sdesim.integrators.ou_exact import ExactOU
from sdesim.integrators.rk4 import RK4
from sdesim.integrators.weak2 import WeakOrder2

INTEGRATORS = {cls.name: cls for cls in (EulerMaruyama, StochasticHeun, WeakOrder2, Milstein, ExactOU)}
FLOW_INTEGRATORS = {cls.name: cls for cls in (Dopri5, RK4)}
"""Integrators of deterministic flows (``GradientFlow``, ``ModifiedFlow``); ``INTEGRATORS`` step SDEs."""


def register(cls):
    """Make the integrator class ``cls`` available by its ``name`` (usable as a class decorator)."""
    INTEGRATORS[cls.name] = cls
    return cls


def get(name) -> Integrator:
    """The integrator named ``name`` (or the instance itself)."""
    if isinstance(name, Integrator):
        return name
    if isinstance(name, str) and name in FLOW_INTEGRATORS:
        raise ConfigError(f"integrator {name!r} integrates deterministic flows (GradientFlow, ModifiedFlow), "
                          f"not SDEs; choose one of {sorted(INTEGRATORS)}")
    try:
        return INTEGRATORS[name]()
    except KeyError:
        raise ConfigError(f"unknown integrator {name!r}; choose one of {sorted(INTEGRATORS)}") from None


def get_flow(name):
    """The flow integrator named ``name`` (or the instance itself; ``None``: adaptive Dormand-Prince)."""
    if isinstance(name, tuple(FLOW_INTEGRATORS.values())):
        return name
    try:
        return FLOW_INTEGRATORS["dopri5" if name is None else name]()
    except (KeyError, TypeError):
        raise ConfigError(f"a deterministic flow is integrated by one of {sorted(FLOW_INTEGRATORS)} "
                          f"(default 'dopri5'): integrator={name!r} does not apply") from None


__all__ = ["AffineStep", "Integrator", "Dopri5", "EulerMaruyama", "StochasticHeun", "WeakOrder2",
           "Milstein", "ExactOU", "RK4", "INTEGRATORS", "FLOW_INTEGRATORS", "get", "get_flow", "register"]
