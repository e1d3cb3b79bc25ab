r"""Learning-rate schedules: multipliers :math:`s(t)` with :math:`lr(t) = lr \cdot s(t)`.

Time is ``t = k * lr`` (the base ``lr``) for every dynamic, so one schedule
drives discrete SGD, flows and the SGD diffusion alike; in the diffusion it
makes the temperature :math:`T(t) = lr\, s(t) / 2B` time-dependent.
Every schedule is vectorised over ``t``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from sdesim.errors import ConfigError


class Schedule(ABC):
    """A learning-rate multiplier ``s(t)``; call it on a float or an array of times."""

    @abstractmethod
    def __call__(self, t):
        """Multiplier at time ``t`` (same shape as ``t``)."""


@dataclass(frozen=True)
class Constant(Schedule):
    """:math:`s(t) = 1`."""

    def __call__(self, t):
        return np.ones_like(np.asarray(t, dtype=float))


@dataclass(frozen=True)
class Step(Schedule):
    r"""Step decay :math:`s(t) = \gamma^{\lfloor t / \tau \rfloor}` (``every = tau``, ``factor = gamma``)."""

    every: float
    factor: float = 0.1

    def __post_init__(self):
        _check(self, positive=("every",), non_negative=("factor",))

    def __call__(self, t):
        return self.factor ** np.floor(np.asarray(t, dtype=float) / self.every)


@dataclass(frozen=True)
class Cosine(Schedule):
    r"""Cosine annealing :math:`s(t) = m + (1 - m)\,\frac{1 + \cos(\pi \min(t, T)/T)}{2}` (``final = m``)."""

    t_total: float
    final: float = 0.0

    def __post_init__(self):
        _check(self, positive=("t_total",), non_negative=("final",))

    def __call__(self, t):
        x = np.minimum(np.asarray(t, dtype=float), self.t_total) / self.t_total
        return self.final + (1.0 - self.final) * 0.5 * (1.0 + np.cos(np.pi * x))


@dataclass(frozen=True)
class Cyclic(Schedule):
    r"""Triangular cyclic schedule (Smith & Topin): from ``low`` up to ``high`` and back every ``period``.

    :math:`s(t) = low + (high - low)\,(1 - |2 \{t / P\} - 1|)`.
    """

    period: float
    low: float = 0.1
    high: float = 1.0

    def __post_init__(self):
        _check(self, positive=("period",), non_negative=("low", "high"))

    def __call__(self, t):
        phase = np.mod(np.asarray(t, dtype=float) / self.period, 1.0)
        return self.low + (self.high - self.low) * (1.0 - np.abs(2.0 * phase - 1.0))


@dataclass(frozen=True)
class WarmUp(Schedule):
    r"""Linear warm-up :math:`s(t) = \min(1, t / t_w)` times an optional ``then`` schedule."""

    t_warmup: float
    then: Schedule | None = None

    def __post_init__(self):
        _check(self, positive=("t_warmup",))
        if self.then is not None and not isinstance(self.then, Schedule):
            raise ConfigError(f"WarmUp.then must be a schedule, got {self.then!r}")

    def __call__(self, t):
        t = np.asarray(t, dtype=float)
        ramp = np.minimum(1.0, t / self.t_warmup)
        return ramp * (self.then(t) if self.then is not None else 1.0)


def multiplier(schedule: Schedule | None, t):
    """``schedule(t)``, or ones for no schedule."""
    return Constant()(t) if schedule is None else schedule(t)


def _check(schedule, positive=(), non_negative=()):
    """Times and periods finite and positive, multipliers finite and non-negative."""
    name = type(schedule).__name__
    for field in positive + non_negative:
        value = getattr(schedule, field)
        ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
            and np.isfinite(value) and (value > 0 if field in positive else value >= 0)
        if not ok:
            kind = "positive" if field in positive else "non-negative"
            raise ConfigError(f"{name}.{field} must be a finite {kind} number, got {value!r}")
