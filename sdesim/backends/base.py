"""The backend contract: what a backend is, what it says about a plan, and how it steps one.

A backend is one module that defines a :class:`Backend` subclass and an instance
``backend``, plus one line in :data:`sdesim.backends.REGISTRY`. It

- says whether it can run here (:meth:`Backend.available`: ``(False, why)`` naming
  what to install when not);
- says how it runs a :class:`~sdesim.plan.Plan` (:meth:`Backend.support`): ``"compiled"``
  (its own kernels), ``"reference"`` (it steps the plan with the NumPy reference
  stepper, with the reason) or ``"unsupported"`` (with the reason; ``simulate`` raises);
- keeps its scratch in the :class:`State` it creates (:meth:`Backend.start`);
- advances the state over a segment of steps (:meth:`Backend.advance`), returning the
  states at the requested steps, and marks particles that left ``|w_i| <= bound``.

It reads the plan only; it never resolves anything about the loss or the dynamic.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

LEVELS = ("compiled", "reference", "unsupported")


@dataclass(frozen=True)
class Support:
    """How a backend runs a plan: ``level`` in :data:`LEVELS`, and why when not compiled."""

    level: str
    reason: str = ""

    def describe(self) -> str:
        """The ``stepper`` entry of a result's metadata."""
        if self.level == "reference" and self.reason:
            return f"NumPy reference stepper: {self.reason}"
        return self.level if not self.reason else f"{self.level}: {self.reason}"


@dataclass
class State:
    """The ensemble between segments: states ``W (N, dim)``, velocities ``V``, divergence steps, scratch.

    ``diverged_at[p]`` is the first step at which particle ``p`` was stopped (``-1``: alive);
    ``scratch`` belongs to the backend that created the state.
    """

    W: np.ndarray
    V: np.ndarray
    diverged_at: np.ndarray
    scratch: dict = field(default_factory=dict)


class Backend(ABC):
    """A way to run plans (module docstring)."""

    name: str = ""
    install: str = ""
    """What to install when :meth:`available` says no (e.g. ``pip install cupy-cuda12x`` for a GPU backend)."""

    def available(self) -> tuple[bool, str]:
        """``(True, "")``, or ``(False, why)``."""
        return True, ""

    @abstractmethod
    def support(self, plan) -> Support:
        """How this backend runs ``plan``."""

    def start(self, plan, W0) -> State:
        """A fresh state at ``W0 (N, dim)``."""
        return State(W=np.array(W0, dtype=float), V=np.zeros_like(W0, dtype=float),
                     diverged_at=np.full(plan.n_particles, -1, np.int64))

    @abstractmethod
    def advance(self, plan, state, k0, k1, record) -> list:
        """Advance ``state`` from step ``k0`` to ``k1``; the states at steps ``record`` (before stepping)."""
