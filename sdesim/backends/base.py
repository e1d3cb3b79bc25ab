"""The backend contract: what a backend is, what it says about a plan, and how it steps one.

A backend is one module that defines a :class:`Backend` subclass and an instance
``backend``, plus one line in :data:`sdesim.backends.REGISTRY`. It

- says whether it can run here (:meth:`Backend.available`: ``(False, why)`` naming
  what to install when not);
- says how it runs a :class:`~sdesim.plan.Plan` (:meth:`Backend.support`): ``"compiled"``
  (its own kernels), ``"reference"`` (it steps the plan with the NumPy reference
  stepper, with the reason) or ``"unsupported"`` (with the reason; ``simulate`` raises);
- keeps its states and scratch in the :class:`State` it creates (:meth:`Backend.start`), as
  arrays of its array module :attr:`Backend.xp` (NumPy, or e.g. CuPy on a GPU), and copies
  an array back to NumPy on request (:meth:`Backend.to_host`);
- advances the state over a segment of steps (:meth:`Backend.advance`), returning the
  states at the requested steps, and marks particles that left ``|w_i| <= bound``.

It reads the plan only; it never resolves anything about the loss or the dynamic.
"""

from __future__ import annotations

import sys
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

    ``V`` is ``None`` when the plan needs no velocity (no momentum, hence no look-ahead:
    :func:`needs_velocity`). ``diverged_at[p]`` is the first step at which particle ``p``
    was stopped (``-1``: alive). All are arrays of the backend's :attr:`Backend.xp`;
    ``scratch`` belongs to the backend that created the state.
    """

    W: np.ndarray
    V: np.ndarray | None
    diverged_at: np.ndarray
    scratch: dict = field(default_factory=dict)


class Backend(ABC):
    """A way to run plans (module docstring)."""

    name: str = ""
    xp = np
    """The array module of the states and records (``numpy``; e.g. ``cupy`` for a GPU backend)."""
    install: str = ""
    """What to install when :meth:`available` says no (e.g. ``pip install cupy-cuda12x`` for a GPU backend)."""

    def available(self) -> tuple[bool, str]:
        """``(True, "")``, or ``(False, why)``."""
        return True, ""

    @abstractmethod
    def support(self, plan) -> Support:
        """How this backend runs ``plan``."""

    def start(self, plan, W0) -> State:
        """A fresh state at ``W0 (N, dim)`` (a NumPy array the state may take over: the caller drops it)."""
        W = np.asarray(W0, dtype=float)
        return State(W=W, V=np.zeros_like(W) if needs_velocity(plan) else None,
                     diverged_at=np.full(plan.n_particles, -1, np.int64))

    def to_host(self, a) -> np.ndarray:
        """``a`` (an array of :attr:`xp`) as a NumPy array (no copy when it already is one)."""
        return np.asarray(a)

    @abstractmethod
    def advance(self, plan, state, k0, k1, record):
        """Advance ``state`` from step ``k0`` to ``k1``; the states at steps ``record`` (before stepping)
        as one ``(len(record), N, dim)`` array of :attr:`xp` (or a list of ``(N, dim)`` arrays)."""


def needs_velocity(plan) -> bool:
    """Whether the dynamic carries a velocity: momentum (Nesterov's look-ahead needs momentum too)."""
    return plan.momentum != 0.0 or plan.lookahead != 0.0


def array_namespace(a):
    """The array module of ``a``: ``cupy`` for a CuPy array, the ``__array_namespace__()`` of another
    non-NumPy array, else ``numpy`` (CuPy is never imported here: its arrays exist only once it is)."""
    if isinstance(a, np.ndarray):
        return np
    cupy = sys.modules.get("cupy")
    if cupy is not None and isinstance(a, cupy.ndarray):
        return cupy
    space = getattr(a, "__array_namespace__", None)
    return space() if space is not None else np


def host_array(a) -> np.ndarray:
    """A small result of any array module as a NumPy array: ``a.get()`` for device arrays (CuPy's
    copy to the host), else ``np.asarray(a)``."""
    if isinstance(a, np.ndarray) or not hasattr(a, "get"):
        return np.asarray(a)
    return np.asarray(a.get())
