r"""Theory of escape times: Eyring-Kramers, the exact 1D quadrature, and Arrhenius fits.

Overdamped Langevin :math:`dw = -\nabla C\,dt + \sqrt{2T}\,dW` (the isotropic SGD diffusion,
:math:`T = lr / 2B`) leaves the basin of a minimum :math:`a` over a saddle :math:`b` after a mean time

.. math::

    \tau \simeq \frac{2\pi}{|\lambda_-(b)|} \sqrt{\frac{|\det \nabla^2 C(b)|}{\det \nabla^2 C(a)}}
    \; e^{(C(b) - C(a)) / T} \qquad (\Delta C / T \gg 1),

(Eyring-Kramers; :math:`\lambda_-(b)` the negative Hessian eigenvalue at the saddle), which in
1D is :math:`2\pi / \sqrt{C''(a) |C''(b)|}\, e^{\Delta C / T}`. The exact 1D mean first-passage
time from :math:`x_0` to :math:`x_1 > x_0` (reflecting at :math:`-\infty`) is

.. math::

    \tau(x_0 \to x_1) = \frac1T \int_{x_0}^{x_1} dy\; e^{C(y)/T} \int_{-\infty}^{y} dz\; e^{-C(z)/T}.

Times are in the simulator's clock ``t = k * lr``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sdesim.errors import ConfigError, ShapeError
from sdesim.linalg import fit_line
from sdesim.losses.catalog import CriticalPoint

__all__ = ["ArrheniusFit", "fit_arrhenius", "kramers_time", "mfpt_1d"]


def _location(point, dim):
    """Coordinates ``(dim,)`` of a point given as an array or a catalog ``CriticalPoint``."""
    x = np.asarray(point.location if isinstance(point, CriticalPoint) else point, dtype=float).reshape(-1)
    if x.shape != (dim,):
        raise ShapeError(f"points must have {dim} coordinates, got shape {np.shape(point)}")
    return x


def kramers_time(loss, minimum, saddle, temperature) -> float:
    r"""Eyring-Kramers mean escape time from ``minimum`` over ``saddle`` (module docstring).

    Parameters
    ----------
    loss : Loss
        With ``value`` and ``hessian``.
    minimum, saddle : array_like, shape (dim,), or catalog ``CriticalPoint``
        A minimum (positive definite Hessian) and an index-1 saddle.
    temperature : float
        :math:`T` (the isotropic SGD diffusion: :math:`s\,lr / 2B`).

    Raises
    ------
    ValueError
        ``temperature <= 0``, ``minimum`` not a minimum, or ``saddle`` not of index 1.
    """
    a, b = _location(minimum, loss.dim), _location(saddle, loss.dim)
    if not temperature > 0:
        raise ConfigError(f"temperature must be positive, got {temperature}")
    ha = np.linalg.eigvalsh(np.asarray(loss.hessian(a)))
    hb = np.linalg.eigvalsh(np.asarray(loss.hessian(b)))
    if ha[0] <= 0:
        raise ConfigError(f"{a} is not a minimum: Hessian eigenvalues {ha}")
    if not (hb[0] < 0 and (hb.size == 1 or hb[1] > 0)):
        raise ConfigError(f"{b} is not an index-1 saddle: Hessian eigenvalues {hb}")
    barrier = float(loss.value(b) - loss.value(a))
    prefactor = 2 * np.pi / abs(hb[0]) * np.sqrt(abs(np.prod(hb)) / np.prod(ha))
    return float(prefactor * np.exp(barrier / temperature))


@dataclass(frozen=True)
class ArrheniusFit:
    r"""Fit :math:`\log\tau = \log A + \Delta C / T`: ``barrier`` :math:`\Delta C` with ``barrier_se``, ``prefactor`` :math:`A`."""

    barrier: float
    barrier_se: float
    prefactor: float


def fit_arrhenius(temperatures, times, times_se=None) -> ArrheniusFit:
    r"""Barrier and prefactor from escape times at several temperatures (an Arrhenius plot).

    Weighted least squares of :math:`\log\tau` against :math:`1/T` (:func:`sdesim.linalg.fit_line`),
    weights :math:`(\tau / \sigma_\tau)^2` when ``times_se`` is given. The Kramers law gives the slope
    :math:`\Delta C` as :math:`T \to 0`; at finite :math:`T` the prefactor's :math:`O(T)`
    corrections bend the line. The standard error is from ``times_se`` when given, else from
    the residuals (``n - 2`` degrees of freedom; 0 for two points).
    """
    T = np.asarray(temperatures, dtype=float).ravel()
    tau = np.asarray(times, dtype=float).ravel()
    if not (np.all(T > 0) and np.all(tau > 0) and np.isfinite(T).all() and np.isfinite(tau).all()):
        raise ConfigError("temperatures and times must be finite and positive")
    w = None if times_se is None else (tau / np.asarray(times_se, dtype=float).ravel()) ** 2
    line = fit_line(1.0 / T, np.log(tau), w, absolute_weights=times_se is not None)
    return ArrheniusFit(line.slope, line.slope_se, float(np.exp(line.intercept)))


def mfpt_1d(loss, x0, x1, temperature, n=20_001, cutoff=40.0) -> float:
    r"""Exact mean first-passage time from ``x0`` to ``x1`` of 1D overdamped Langevin at ``temperature``.

    Evaluates the double quadrature of the module docstring (mirrored when ``x1 < x0``,
    with the reflecting end at :math:`+\infty`) by cumulative trapezoids on ``n``
    points each on the far side of ``x0`` and on ``[x0, x1]``, the far end cut where :math:`C - \min C > \text{cutoff}\cdot T`.

    Parameters
    ----------
    loss : 1D Loss (confining on the far side)
    x0, x1 : float
    temperature : float

    Raises
    ------
    ShapeError
        ``loss`` is not one-dimensional.
    ValueError
        ``temperature <= 0``, or the loss does not confine (no cut-off within ``1e6`` widths).
    """
    from scipy.integrate import cumulative_trapezoid, trapezoid

    if loss.dim != 1:
        raise ShapeError(f"mfpt_1d needs a 1D loss, got dim = {loss.dim}")
    T = float(temperature)
    if not T > 0:
        raise ConfigError(f"temperature must be positive, got {temperature}")
    x0, x1 = float(x0), float(x1)
    if x0 == x1:
        return 0.0
    sign = 1.0 if x1 > x0 else -1.0
    C = lambda x: np.asarray(loss.value(np.asarray(x, dtype=float)[..., None]), dtype=float)
    c_min = C(np.linspace(x0, x1, 1001)).min()
    step = max(abs(x1 - x0), 1.0)
    far = x0 - sign * step
    while C(far) - c_min < cutoff * T:
        step *= 1.5
        far = x0 - sign * step
        if step > 1e6 * max(abs(x1 - x0), 1.0):
            raise ConfigError("the loss does not confine beyond x0: no reflecting end for the quadrature")
    tail = np.linspace(far, x0, n)                       # reflecting end -> x0: inner integral only
    path = np.linspace(x0, x1, n)                        # x0 -> x1: both integrals
    z = np.concatenate([tail, path[1:]])
    c = C(z)
    c_ref = c.min()
    inner = sign * cumulative_trapezoid(np.exp(-(c - c_ref) / T), z, initial=0.0)[n - 1:]
    outer = sign * trapezoid(np.exp((c[n - 1:] - c_ref) / T) * inner, path)
    return float(outer / T)
