"""Base classes of the dynamics: specs of *what moves*, independent of the loss.

A dynamic is a frozen dataclass. ``simulate`` and ``FokkerPlanck.from_dynamics``
bind it to a loss. Time is ``t = k * lr`` for every dynamic.
"""

from __future__ import annotations

import dataclasses
from abc import ABC

import numpy as np

from sdesim.dynamics.schedules import multiplier
from sdesim.errors import ConfigError


class Dynamic(ABC):
    """A dynamic: discrete (``steps``) or continuous (``t_end``, ``dt``)."""

    continuous: bool = False

    def describe(self) -> dict:
        """Plain description for a result's metadata (enough to rebuild the dynamic)."""
        out = {"type": type(self).__name__}
        for f in dataclasses.fields(self):
            out[f.name] = _plain(getattr(self, f.name))
        return out

    @property
    def label(self) -> str:
        """Short label for legends."""
        return type(self).__name__


class WithLearningRate:
    """Mixin: a base ``lr`` and an optional schedule, :math:`lr(t) = lr\\, s(t)`."""

    def _extras(self) -> str:
        """Label suffix naming a schedule and momentum, when set."""
        parts = []
        if getattr(self, "momentum", 0.0):
            parts.append(f"{'Nesterov ' if self.nesterov else ''}momentum={self.momentum:g}")
        if self.schedule is not None:
            parts.append(type(self.schedule).__name__.lower())
        return "".join(f", {p}" for p in parts)

    def lr_at(self, t):
        """Learning rate at time ``t`` (scalar or array)."""
        return self.lr * multiplier(self.schedule, t)


def as_count(obj, name):
    """Store the integral field ``name`` of the frozen dataclass ``obj`` as an ``int`` (``4.0`` -> ``4``)."""
    value = getattr(obj, name)
    if value is not None:
        object.__setattr__(obj, name, int(value))


def check_positive(name, value, integer=False):
    if integer and (int(value) != value):
        raise ConfigError(f"{name} must be an integer, got {value}")
    if not np.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be positive and finite, got {value}")


def _plain(v):
    """``v`` as JSON-able values; a dataclass (a schedule, nested ones too) as ``{"type": name, **fields}``."""
    if isinstance(v, np.ndarray):
        return v.tolist()
    if dataclasses.is_dataclass(v):
        return {"type": type(v).__name__, **{f.name: _plain(getattr(v, f.name)) for f in dataclasses.fields(v)}}
    return v
