"""How continuous dynamics are stepped: SDE schemes and the adaptive flow integrator."""

from sdesim.errors import ConfigError
from sdesim.integrators.base import AffineStep, Integrator
from sdesim.integrators.dopri5 import Dopri5
from sdesim.integrators.euler_maruyama import EulerMaruyama
from sdesim.integrators.heun import StochasticHeun
from sdesim.integrators.milstein import Milstein
from sdesim.integrators.ou_exact import ExactOU
from sdesim.integrators.weak2 import WeakOrder2

INTEGRATORS = {cls.name: cls for cls in (EulerMaruyama, StochasticHeun, WeakOrder2, Milstein, ExactOU)}


def register(cls):
    """Make the integrator class ``cls`` available by its ``name`` (usable as a class decorator)."""
    INTEGRATORS[cls.name] = cls
    return cls


def get(name) -> Integrator:
    """The integrator named ``name`` (or the instance itself)."""
    if isinstance(name, Integrator):
        return name
    try:
        return INTEGRATORS[name]()
    except KeyError:
        raise ConfigError(f"unknown integrator {name!r}; choose one of {sorted(INTEGRATORS)}") from None


__all__ = ["AffineStep", "Integrator", "Dopri5", "EulerMaruyama", "StochasticHeun", "WeakOrder2",
           "Milstein", "ExactOU", "INTEGRATORS", "get", "register"]
