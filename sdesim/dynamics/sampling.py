r"""Minibatch sampling on the counter-based streams: the one ``Sampler`` of every backend and of network training.

Particle ``p`` at step ``k`` draws from the sampling stream ``(sampling_key(seed), p, counter)``
of :mod:`sdesim.rng`, so the minibatches depend only on ``(seed, p, k)``: not on the
backend, the thread count, the segmentation of the run, or whether the "particle" is a
synthetic finite sum or a real network.

- ``"replacement"``: ``B`` indices ``floor(u n)`` from the uniforms at counters ``k B + j``.
- ``"shuffle"``: at the start of epoch ``e`` (``m = n // B`` steps each) a permutation of the
  ``n`` samples, ``argsort`` of the uniforms at counters ``e n + s`` (stable); step ``k``
  takes the slice ``[pos B, (pos + 1) B)`` with ``pos = k mod m``.
- ``"fixed"``: the data split once into ``m = n // B`` consecutive batches, visited in the
  order ``argsort`` of the uniforms at counters ``e m + s`` (Smith et al. 2021).

Without replacement an epoch visits ``m B`` samples: the ``n mod B`` left over (``n`` not a
multiple of ``B``) are the last ones of the epoch's permutation (``"shuffle"``, so a different
few every epoch) or the last ``n mod B`` rows of the data (``"fixed"``, never visited).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sdesim import rng
from sdesim.errors import ConfigError

SAMPLINGS = ("replacement", "shuffle", "fixed")
_SAMPLING_SALT = np.uint64(0xD1B54A32D192ED03)


def sampling_key(seed: int) -> int:
    """Key of the minibatch-sampling stream, independent of the Gaussian stream of ``seed``."""
    return int(np.uint64(seed) ^ _SAMPLING_SALT)


def _uniforms(key, particles, counters):
    """Uniforms ``(len(particles), len(counters))`` of the sampling stream."""
    streams = np.asarray(particles, dtype=np.uint64)[:, None]
    return rng.uniforms(key, streams, np.asarray(counters, dtype=np.uint64)[None, :])


@dataclass(frozen=True)
class Sampler:
    """Minibatches of ``batch_size`` out of ``n_samples`` for every particle and step (module docstring)."""

    mode: str
    n_samples: int
    batch_size: int
    seed: int

    def __post_init__(self):
        if self.mode not in SAMPLINGS:
            raise ConfigError(f"sampling must be one of {SAMPLINGS}, got {self.mode!r}")
        if self.n_samples < 1 or self.batch_size < 1:
            raise ConfigError(f"need n_samples >= 1 and batch_size >= 1, got {self.n_samples}, {self.batch_size}")
        if self.mode != "replacement" and self.batch_size > self.n_samples:
            raise ConfigError(f"batch_size = {self.batch_size} exceeds the {self.n_samples} samples: "
                              f"sampling={self.mode!r} draws without replacement (use batch_size <= "
                              f"{self.n_samples}, or sampling='replacement')")

    @property
    def key(self) -> int:
        return sampling_key(self.seed)

    @property
    def steps_per_epoch(self) -> int:
        """``m = n // B`` without replacement (``n mod B`` samples left over per epoch), 1 with."""
        return 1 if self.mode == "replacement" else self.n_samples // self.batch_size

    def epoch_order(self, epoch: int, particles) -> np.ndarray:
        """Per-particle order of epoch ``epoch``: a permutation of the samples (shuffle) or of the batches (fixed)."""
        size = self.n_samples if self.mode == "shuffle" else self.steps_per_epoch
        counters = epoch * size + np.arange(size)
        return np.argsort(_uniforms(self.key, particles, counters), axis=1, kind="stable")

    def indices(self, k: int, particles, memo: dict | None = None) -> np.ndarray:
        """Sample indices ``(len(particles), B)`` of step ``k``.

        ``memo`` (a dict owned by the caller) keeps the current epoch's order between
        steps, for the same ``particles``.
        """
        n, B = self.n_samples, self.batch_size
        if self.mode == "replacement":
            u = _uniforms(self.key, particles, k * B + np.arange(B))
            return np.minimum((u * n).astype(np.int64), n - 1)
        epoch, pos = divmod(k, self.steps_per_epoch)
        memo = {} if memo is None else memo
        if memo.get("epoch") != epoch:
            memo.update(epoch=epoch, order=self.epoch_order(epoch, particles))
        order = memo["order"]
        if self.mode == "shuffle":
            return order[:, pos * B:(pos + 1) * B]
        return order[:, pos:pos + 1] * B + np.arange(B)
