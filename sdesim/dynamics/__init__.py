"""What moves: discrete GD/SGD, gradient and modified flows, and the SGD diffusion."""

from sdesim.dynamics import schedules
from sdesim.dynamics.base import Dynamic
from sdesim.dynamics.diffusion import SGDDiffusion
from sdesim.dynamics.discrete import GD, SGD
from sdesim.dynamics.flows import GradientFlow, ModifiedFlow

__all__ = ["Dynamic", "GD", "SGD", "GradientFlow", "ModifiedFlow", "SGDDiffusion", "schedules"]
