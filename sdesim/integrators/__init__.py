"""How continuous dynamics are stepped: SDE schemes and the adaptive flow integrator."""

from sdesim.integrators.base import Integrator
from sdesim.integrators.dopri5 import Dopri5
from sdesim.integrators.euler_maruyama import EulerMaruyama
from sdesim.integrators.heun import StochasticHeun
from sdesim.integrators.milstein import Milstein
from sdesim.integrators.ou_exact import ExactOU
from sdesim.integrators.weak2 import WeakOrder2
from sdesim.errors import ConfigError

INTEGRATORS = {cls.name: cls for cls in (EulerMaruyama, StochasticHeun, WeakOrder2, Milstein, ExactOU)}


def get(name) -> Integrator:
    """The integrator named ``name`` (or the instance itself)."""
    if isinstance(name, Integrator):
        return name
    try:
        return INTEGRATORS[name]()
    except KeyError:
        raise ConfigError(f"unknown integrator {name!r}; choose one of {sorted(INTEGRATORS)}") from None


__all__ = ["Integrator", "Dopri5", "EulerMaruyama", "StochasticHeun", "WeakOrder2", "Milstein",
           "ExactOU", "INTEGRATORS", "get"]
