r"""The SGD diffusion: the SDE that approximates SGD with learning rate ``lr`` and batch ``B``.

.. math:: dw = b(w, t)\,dt + \sqrt{lr(t) / B}\; \Sigma^{1/2}(w)\, dW_t \qquad \text{(Ito)},

with drift :math:`b = -\nabla C` (first-order SME of Li, Tai & E) or, with
``modified=True``, :math:`b = -\nabla(C + \frac{lr}{4}|\nabla C|^2)
= -\nabla C - \frac{lr}{2} \nabla^2 C\, \nabla C` (their second-order SME drift).
Noise:

- ``"isotropic"``: :math:`\Sigma = s I` (``noise_scale = s``): overdamped Langevin at
  temperature :math:`T = s\, lr / 2B`, Gibbs stationary density :math:`\propto e^{-C/T}`;
- ``"anisotropic"``: :math:`\Sigma = s\, \Sigma_1(w)` of the loss (:mod:`.noise`);
- ``"lowrank"``: the top-``rank`` eigenpairs of :math:`s\,\Sigma_1(w)`.

Diffusion tensor (Fokker-Planck): :math:`D = \frac{lr(t)}{2B}\, \Sigma`. Time ``t = k * lr``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sdesim.dynamics.base import Dynamic, WithLearningRate, as_count, check_positive
from sdesim.dynamics.noise import check_noise_spec, resolve_noise
from sdesim.dynamics.schedules import Schedule
from sdesim.errors import ConfigError

NOISES = ("isotropic", "anisotropic", "lowrank")


@dataclass(frozen=True)
class SGDDiffusion(Dynamic, WithLearningRate):
    """The SGD diffusion (module docstring): temperature ``lr / 2B`` times the noise covariance."""

    lr: float
    batch_size: int = 1
    noise: str = "isotropic"
    noise_scale: float = 1.0
    rank: int | None = None
    modified: bool = False
    schedule: Schedule | None = None
    noise_covariance: Any = None
    noise_factor: Any = None

    continuous = True

    def __post_init__(self):
        check_positive("lr", self.lr)
        check_positive("batch_size", self.batch_size, integer=True)
        check_positive("noise_scale", self.noise_scale)
        if self.noise not in NOISES:
            raise ConfigError(f"noise must be one of {NOISES}, got {self.noise!r}")
        if self.noise == "lowrank":
            if self.rank is None:
                raise ConfigError("noise='lowrank' needs rank=k")
            check_positive("rank", self.rank, integer=True)
        elif self.rank is not None:
            raise ConfigError(f"rank={self.rank} applies to noise='lowrank' only (noise={self.noise!r})")
        as_count(self, "batch_size")
        as_count(self, "rank")
        cov, fac = check_noise_spec(self.noise_covariance, self.noise_factor)
        object.__setattr__(self, "noise_covariance", cov)
        object.__setattr__(self, "noise_factor", fac)

    @property
    def label(self):
        return f"SDE {self.noise} (T={self.noise_scale * self.lr / (2.0 * self.batch_size):.3g}{self._extras()})"

    def temperature(self, t=0.0):
        r"""Temperature :math:`T(t) = s\, lr(t) / 2B`."""
        return self.noise_scale * self.lr_at(t) / (2.0 * self.batch_size)

    def drift(self, loss, W, t=0.0):
        r"""Drift :math:`b(w, t)`, shape ``(..., dim)``."""
        g = loss.grad(W, t)
        if self.modified:
            g = g + 0.5 * self.lr_at(t) * np.einsum("...ij,...j->...i", loss.hessian(W, t), g)
        return -g

    def noise_factor_at(self, loss, W, t=0.0):
        r"""Factor :math:`G_1` of the per-sample part, :math:`G_1 G_1^T = s\,\Sigma_1(w)`: ``(..., dim, r)``."""
        W = np.asarray(W, dtype=float)
        noise = resolve_noise(loss, self)
        s = np.sqrt(self.noise_scale)
        if noise.additive:
            return np.broadcast_to(s * noise.factor, W.shape[:-1] + noise.factor.shape)
        return s * noise.factor_at(loss, W, t)

    def diffusion_factor(self, loss, W, t=0.0):
        r""":math:`G = \sqrt{lr(t)/B}\, G_1` in :math:`dw = b\,dt + G\,dW`: ``(..., dim, r)``."""
        return np.sqrt(self.lr_at(t) / self.batch_size) * self.noise_factor_at(loss, W, t)

    def diffusion(self, loss, W, t=0.0):
        r"""Diffusion tensor :math:`D = G G^T / 2 = \frac{lr(t)}{2B} s\,\Sigma_1(w)`: ``(..., dim, dim)``."""
        G = self.diffusion_factor(loss, W, t)
        return 0.5 * G @ np.swapaxes(G, -1, -2)
