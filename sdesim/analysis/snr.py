r"""Gradient signal-to-noise ratio along training: the drift and diffusion phases of SGD.

.. math::

    \mathrm{SNR}(w) = \frac{|\nabla C(w)|^2}{E|g_B - \nabla C|^2}
    = \frac{|\nabla C(w)|^2}{\operatorname{tr} \Sigma_1(w) / B},

with minibatches drawn with replacement (without: times :math:`(n - B)/(n - 1)` in the
denominator). :math:`\mathrm{SNR} \gg 1`: the drift phase, SGD follows the gradient;
:math:`\mathrm{SNR} \lesssim 1`: the diffusion phase near a minimum, where the noise dominates
(Shwartz-Ziv & Tishby 2017).
"""

from __future__ import annotations

import numpy as np

from sdesim.errors import ConfigError, LossKindError, ShapeError
from sdesim.losses.base import as_loss

__all__ = ["gradient_noise_trace", "gradient_snr", "snr_along"]


def gradient_noise_trace(loss, W) -> np.ndarray:
    r""":math:`\operatorname{tr}\Sigma_1(w)`, the per-sample gradient variance; ``W (..., dim) -> (...)``.

    Losses with ``per_sample_noise``: the trace of ``noise_covariance_at(W)``; for a
    ``QuadraticModel`` the constant :math:`\operatorname{tr} S` without forming ``S``.

    Raises
    ------
    LossKindError
        ``loss`` has no per-sample noise (a plain ``Loss``).
    """
    loss = as_loss(loss)
    W = np.asarray(W, dtype=float)
    if W.ndim == 0 or W.shape[-1] != loss.dim:
        raise ShapeError(f"W must have shape (..., {loss.dim}), got {W.shape}")
    if not loss.per_sample_noise:
        raise LossKindError(f"{type(loss).__name__} has no per-sample gradient noise: use a FiniteSumLoss "
                            "or a QuadraticModel")
    if loss.kind == "quadratic":
        return np.full(W.shape[:-1], loss.noise_trace)
    return np.trace(loss.noise_covariance_at(W), axis1=-2, axis2=-1)


def gradient_snr(loss, W, batch_size=1, replacement=True) -> np.ndarray:
    r"""Gradient signal-to-noise :math:`|\nabla C|^2 B / \operatorname{tr}\Sigma_1` at points ``W (..., dim) -> (...)``.

    Parameters
    ----------
    loss : FiniteSumLoss, QuadraticModel or a catalog landscape of one
    W : array_like, shape (..., dim)
        Non-finite points give NaN.
    batch_size : int
    replacement : bool
        ``False``: minibatches without replacement from ``n`` samples, noise
        variance :math:`\operatorname{tr}\Sigma_1 (n - B) / (B (n - 1))`.
    """
    loss = as_loss(loss)
    W = np.asarray(W, dtype=float)
    B = int(batch_size)
    if B < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if W.ndim == 0 or W.shape[-1] != loss.dim:
        raise ShapeError(f"W must have shape (..., {loss.dim}), got {W.shape}")
    out = np.full(W.shape[:-1], np.nan)
    ok = np.isfinite(W).all(axis=-1)
    if not ok.any():
        return out
    noise = gradient_noise_trace(loss, W[ok]) / B
    if not replacement:
        if loss.kind != "finite_sum":
            raise LossKindError("replacement=False needs a FiniteSumLoss (a number of samples)")
        n = loss.n_samples
        if B > n:
            raise ConfigError(f"batch_size {B} exceeds the {n} samples")
        noise = noise * (n - B) / max(n - 1, 1)
    g = np.asarray(loss.grad(W[ok]))
    with np.errstate(divide="ignore", invalid="ignore"):
        out[ok] = np.sum(g ** 2, axis=-1) / noise
    return out


def snr_along(result, loss, batch_size=None, replacement=True) -> np.ndarray:
    """Gradient SNR at every recorded state of a ``Result``: ``(T, N)``.

    ``batch_size`` defaults to the run's (``result.metadata["dynamic"]["batch_size"]``).
    """
    if batch_size is None:
        batch_size = (result.metadata.get("dynamic") or {}).get("batch_size")
        if batch_size is None:
            raise ConfigError("the result names no batch_size: pass batch_size=")
    return gradient_snr(loss, result.w, batch_size, replacement)
