"""What every backend shares: the bound problem, its state, and the random-stream layout.

Random numbers are pure functions of ``(key, particle, counter)``
(:mod:`sdesim.rng`): at step ``k`` particle ``p`` uses the Gaussian
counters ``k * n_pairs + j`` (``j < n_pairs = ceil(r / 2)``, ``r`` noise
columns) under ``seed``, and the minibatch counters under ``sampling_key(seed)``.
Segmenting a run or changing the thread count never changes a number.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sdesim.dynamics.noise import constant_factor, loss_kind

_SAMPLING_SALT = np.uint64(0xD1B54A32D192ED03)


def sampling_key(seed: int) -> int:
    """Key of the minibatch-sampling stream, independent of the Gaussian stream of ``seed``."""
    return int(np.uint64(seed) ^ _SAMPLING_SALT)


@dataclass(frozen=True)
class Problem:
    """A dynamic bound to a loss with the run's settings (``dt`` is ``lr`` for discrete dynamics)."""

    loss: object
    dynamic: object
    n_particles: int
    dim: int
    n_steps: int
    dt: float
    seed: int
    integrator: object = None
    bound: float = 1e8

    @property
    def kind(self) -> str:
        return loss_kind(self.loss)

    def times(self, steps):
        """Times ``t = k * dt`` of the given steps."""
        return np.asarray(steps, dtype=float) * self.dt


@dataclass
class State:
    """Mutable state of an ensemble between segments."""

    W: np.ndarray
    V: np.ndarray | None = None
    diverged_at: np.ndarray = None
    extra: dict = field(default_factory=dict)


class BoundSDE:
    """The SGD diffusion of a dynamic on a loss, as integrators see it."""

    def __init__(self, loss, dynamic):
        self.loss = loss
        self.dynamic = dynamic
        G = None
        if dynamic.noise == "isotropic":
            G = np.sqrt(dynamic.noise_scale) * np.eye(_dim(loss))
        elif dynamic.noise == "anisotropic":
            G = constant_factor(loss, dynamic.noise_covariance, dynamic.noise_factor)
            G = None if G is None else np.sqrt(dynamic.noise_scale) * G
        self._unit_factor = G
        self.additive = G is not None

    @property
    def n_noise(self) -> int:
        """Number of noise columns ``r``."""
        if self.additive:
            return self._unit_factor.shape[1]
        return self.dynamic.rank if self.dynamic.noise == "lowrank" else _dim(self.loss)

    def drift(self, W, t):
        return self.dynamic.drift(self.loss, W, t)

    def factor(self, W, t):
        """``(dim, r)`` for additive noise, else ``(N, dim, r)``."""
        scale = np.sqrt(self.dynamic.lr_at(t) / self.dynamic.batch_size)
        if self.additive:
            return scale * self._unit_factor
        return self.dynamic.diffusion_factor(self.loss, W, t)


def _dim(loss) -> int:
    return loss.dim


def n_pairs(r: int) -> int:
    return (r + 1) // 2
