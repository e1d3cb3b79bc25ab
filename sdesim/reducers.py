r"""Streaming reducers: statistics of long runs without keeping every state.

``simulate(..., reducers=[...], keep="final")`` feeds each segment's recorded
states to the reducers and keeps only the final state, so memory stays bounded
by one segment whatever the run length.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from sdesim.errors import ConfigError


class Reducer(ABC):
    """Consumes recorded states ``w (R, N, dim)`` at times ``t (R,)``, segment by segment."""

    name: str = ""

    @abstractmethod
    def update(self, t, w):
        """Fold in the records of one segment."""

    @abstractmethod
    def result(self) -> dict:
        """Named arrays."""


@dataclass
class RunningMoments(Reducer):
    r"""Mean and covariance over particles and recorded times :math:`t \ge` ``burn_in``.

    Pooled with Chan, Golub & LeVeque's parallel update,
    :math:`M_{AB} = M_A + M_B + \delta\delta^T n_A n_B / n`, stable for long runs.
    Diverged (NaN) particles are skipped.
    """

    burn_in: float = 0.0
    name: str = "moments"
    count: int = 0
    mean: np.ndarray | None = None
    m2: np.ndarray | None = field(default=None, repr=False)

    def update(self, t, w):
        w = np.asarray(w)[np.asarray(t) >= self.burn_in]
        x = w.reshape(-1, w.shape[-1])
        x = x[np.isfinite(x).all(axis=1)]
        if not len(x):
            return
        n_b = len(x)
        mean_b = x.mean(axis=0)
        d = x - mean_b
        m2_b = d.T @ d
        if self.count == 0:
            self.count, self.mean, self.m2 = n_b, mean_b, m2_b
            return
        n = self.count + n_b
        delta = mean_b - self.mean
        self.m2 = self.m2 + m2_b + np.outer(delta, delta) * self.count * n_b / n
        self.mean = self.mean + delta * n_b / n
        self.count = n

    def result(self) -> dict:
        if self.count == 0:
            raise ConfigError(f"RunningMoments saw no records at t >= {self.burn_in}")
        return {"mean": self.mean, "covariance": self.m2 / max(self.count - 1, 1),
                "count": np.array(self.count)}
