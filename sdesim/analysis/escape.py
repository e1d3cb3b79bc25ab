r"""Basins, first-passage and escape times, and their theory: Kramers and the exact 1D quadrature.

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

from dataclasses import dataclass, field

import numpy as np

from sdesim.errors import ConfigError, ShapeError
from sdesim.reducers import Reducer

__all__ = [
    "ArrheniusFit",
    "Basins",
    "EscapeEstimate",
    "FirstPassage",
    "escape_times",
    "first_passage_times",
    "fit_arrhenius",
    "kramers_time",
    "mean_escape_time",
    "mfpt_1d",
]


def _points(W, dim):
    W = np.asarray(W, dtype=float)
    if W.ndim == 0 or W.shape[-1] != dim:
        raise ShapeError(f"points must have shape (..., {dim}), got {W.shape}")
    return W


@dataclass(frozen=True, eq=False)
class Basins:
    """Basins of attraction of a set of minima: ``basins(W)`` labels points ``(..., dim) -> (...)`` int.

    Parameters
    ----------
    centers : array_like, shape (K, dim)
        The minima; label ``i`` is the basin of ``centers[i]``.
    loss : Loss, optional
        Needed for ``method="gradient"``.
    method : {"nearest", "gradient"}
        ``"nearest"``: the nearest centre (Voronoi cells; exact only for symmetric
        wells). ``"gradient"``: the minimum gradient descent converges to from the
        point (the true basin of attraction), steps ``-lr grad C`` capped at ``max_move``,
        until within ``tol`` of a centre.
    lr : float, optional
        GD step; default ``1 / max`` sharpness at the centres.
    tol, max_steps, max_move : float, int, float
        Convergence radius, step budget, and largest move per step (default a tenth
        of the smallest distance between centres).

    Points that are not finite, or (``"gradient"``) do not converge within
    ``max_steps`` (e.g. on a saddle's stable manifold), get label ``-1``.
    """

    centers: np.ndarray
    loss: object = None
    method: str = "nearest"
    lr: float | None = None
    tol: float = 1e-2
    max_steps: int = 10_000
    max_move: float | None = None

    def __post_init__(self):
        c = np.atleast_2d(np.asarray(self.centers, dtype=float))
        if c.ndim != 2 or len(c) < 1:
            raise ShapeError(f"centers must have shape (K, dim), got {np.shape(self.centers)}")
        object.__setattr__(self, "centers", c)
        if self.method not in ("nearest", "gradient"):
            raise ConfigError(f"method must be 'nearest' or 'gradient', got {self.method!r}")
        if self.method == "gradient":
            if self.loss is None:
                raise ConfigError("method='gradient' needs the loss")
            if self.loss.dim != c.shape[1]:
                raise ShapeError(f"centers have dim {c.shape[1]}, the loss {self.loss.dim}")
            if self.lr is None:
                from sdesim.analysis.sharpness import sharpness
                object.__setattr__(self, "lr", 1.0 / float(np.max(sharpness(self.loss, c))))
            if self.max_move is None:
                gaps = np.linalg.norm(c[:, None] - c[None], axis=-1)[~np.eye(len(c), dtype=bool)]
                object.__setattr__(self, "max_move", 0.1 * float(gaps.min()) if gaps.size else 0.1)

    @classmethod
    def from_landscape(cls, landscape, method="nearest", **kwargs) -> Basins:
        """Basins of a catalog ``Landscape``'s minima (in its stored order)."""
        return cls(np.array([m.location for m in landscape.minima]), loss=landscape.loss, method=method, **kwargs)

    @property
    def dim(self) -> int:
        return self.centers.shape[1]

    def _nearest(self, X):
        d = np.linalg.norm(X[:, None, :] - self.centers[None], axis=-1)
        return d.argmin(axis=1), d.min(axis=1)

    def __call__(self, W) -> np.ndarray:
        W = _points(W, self.dim)
        X = W.reshape(-1, self.dim)
        labels = np.full(len(X), -1)
        ok = np.flatnonzero(np.isfinite(X).all(axis=1))
        if self.method == "nearest":
            labels[ok] = self._nearest(X[ok])[0]
            return labels.reshape(W.shape[:-1])
        X = X[ok].copy()
        for _ in range(self.max_steps):
            near, dist = self._nearest(X)
            done = dist < self.tol
            labels[ok[done]] = near[done]
            ok, X = ok[~done], X[~done]
            if not len(X):
                break
            step = self.lr * self.loss.grad(X)
            norm = np.linalg.norm(step, axis=1, keepdims=True)
            X -= step * np.minimum(1.0, self.max_move / np.maximum(norm, 1e-300))
        return labels.reshape(W.shape[:-1])


def first_passage_times(result, target):
    """First recorded time each particle is in ``target``, measured from ``result.t[0]``.

    Parameters
    ----------
    result : Result
        ``w (T, N, dim)``; records every step (``record_every=1``) give exact
        discrete-time passages, sparser records overestimate them.
    target : callable
        ``W (..., dim) -> bool (...)``.

    Returns
    -------
    times : (N,) array
        First-passage time, or the censoring time (last finite record) if never.
    observed : (N,) bool array
        ``False`` for censored particles (never reached the target, or diverged first).
    """
    t = np.asarray(result.t)
    w = np.asarray(result.w)
    hit = np.asarray(target(w), dtype=bool)
    if hit.shape != w.shape[:2]:
        raise ShapeError(f"target must map (T, N, dim) to (T, N) booleans, got shape {hit.shape}")
    finite = np.isfinite(w).all(axis=2)
    hit &= finite
    observed = hit.any(axis=0)
    last_finite = np.where(finite.any(axis=0), len(t) - 1 - finite[::-1].argmax(axis=0), 0)
    return t[np.where(observed, hit.argmax(axis=0), last_finite)] - t[0], observed


def escape_times(result, basins, start=None, radius=None):
    """First recorded time each particle is in a basin other than its starting one.

    Parameters
    ----------
    result : Result
    basins : Basins
    start : (N,) int array, optional
        Starting basin labels; default ``basins(result.w[0])``.
    radius : float, optional
        Count an escape only on arrival within ``radius`` of another basin's centre
        (a transition to the other minimum, Kramers' time) rather than on crossing
        the basin boundary. Crossing times of a boundary through a saddle are biased
        upward by sparse records (recrossings between records are missed).

    Returns
    -------
    times, observed : (N,) arrays, as :func:`first_passage_times`.
    """
    start = basins(result.w[0]) if start is None else np.asarray(start)
    if start.shape != (result.n_particles,):
        raise ShapeError(f"start must have shape ({result.n_particles},), got {start.shape}")

    def left(W):
        lab = basins(W)
        out = (lab >= 0) & (lab != start)
        if radius is not None:
            dist = np.linalg.norm(np.asarray(W)[..., None, :] - basins.centers, axis=-1)
            out &= np.take_along_axis(dist, np.maximum(lab, 0)[..., None], axis=-1)[..., 0] <= radius
        return out
    return first_passage_times(result, left)


@dataclass
class FirstPassage(Reducer):
    """Streaming first-passage times into ``target`` (a callable ``W (..., dim) -> bool``).

    Feed it every step (``simulate(..., record_every=1, reducers=[fp], keep="final")``)
    for exact discrete-time passages at bounded memory. ``result()`` gives
    ``{"times": (N,), "observed": (N,) bool}``, times from the first record,
    censored at the last record seen.
    """

    target: object = None
    name: str = "first_passage"
    t0: float | None = None
    t_last: float | None = None
    times: np.ndarray | None = field(default=None, repr=False)

    def update(self, t, w):
        t, w = np.asarray(t), np.asarray(w)
        if not len(t):
            return
        if self.t0 is None:
            self.t0 = float(t[0])
            self.times = np.full(w.shape[1], np.nan)
        self.t_last = float(t[-1])
        todo = np.flatnonzero(np.isnan(self.times))
        if not len(todo):
            return
        hit = np.asarray(self.target(w[:, todo]), dtype=bool) & np.isfinite(w[:, todo]).all(axis=2)
        any_hit = hit.any(axis=0)
        self.times[todo[any_hit]] = t[hit[:, any_hit].argmax(axis=0)] - self.t0

    def result(self) -> dict:
        if self.t0 is None:
            raise ConfigError("FirstPassage saw no records")
        observed = ~np.isnan(self.times)
        return {"times": np.where(observed, self.times, self.t_last - self.t0), "observed": observed}


@dataclass(frozen=True)
class EscapeEstimate:
    """Mean escape time with its standard error.

    ``method`` is ``"mean"`` (every particle escaped: sample mean, ``se = sd / sqrt(n)``) or
    ``"exponential"`` (censored data: the exponential maximum-likelihood estimate
    ``tau = sum(times) / n_observed``, ``se = tau / sqrt(n_observed)``).
    """

    mean: float
    se: float
    n: int
    n_observed: int
    method: str

    @property
    def rate(self) -> float:
        """``1 / mean``."""
        return 1.0 / self.mean


def mean_escape_time(times, observed=None, method="auto") -> EscapeEstimate:
    r"""Mean first-passage time from possibly right-censored times.

    Parameters
    ----------
    times : (N,) array
        Passage times, or censoring times where ``observed`` is ``False``.
    observed : (N,) bool array, optional
        Default: all observed.
    method : {"auto", "mean", "exponential"}
        ``"auto"``: ``"mean"`` when nothing is censored, else ``"exponential"``:
        for exponential passage times (the Kramers regime, :math:`\Delta C / T \gg 1`)
        the MLE is :math:`\hat\tau = \sum_i t_i / n_{\rm obs}`, standard error
        :math:`\hat\tau / \sqrt{n_{\rm obs}}`.

    Raises
    ------
    ValueError
        No passage observed, or ``method="mean"`` with censored data.
    """
    times = np.asarray(times, dtype=float).ravel()
    observed = np.ones(times.shape, bool) if observed is None else np.asarray(observed, bool).ravel()
    if observed.shape != times.shape:
        raise ShapeError(f"observed has shape {observed.shape}, times {times.shape}")
    n, k = times.size, int(observed.sum())
    if k == 0:
        raise ConfigError(f"none of the {n} particles escaped: run longer or raise the temperature")
    if method == "auto":
        method = "mean" if k == n else "exponential"
    if method == "mean":
        if k < n:
            raise ConfigError(f"{n - k} of {n} times are censored: use method='exponential'")
        se = times.std(ddof=1) / np.sqrt(n) if n > 1 else np.inf
        return EscapeEstimate(float(times.mean()), float(se), n, k, "mean")
    if method == "exponential":
        tau = times.sum() / k
        return EscapeEstimate(float(tau), float(tau / np.sqrt(k)), n, k, "exponential")
    raise ConfigError(f"method must be 'auto', 'mean' or 'exponential', got {method!r}")


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
    a = np.asarray(getattr(minimum, "location", minimum), dtype=float).reshape(-1)
    b = np.asarray(getattr(saddle, "location", saddle), dtype=float).reshape(-1)
    if not temperature > 0:
        raise ConfigError(f"temperature must be positive, got {temperature}")
    ha = np.linalg.eigvalsh(np.asarray(loss.hessian(_points(a, loss.dim))))
    hb = np.linalg.eigvalsh(np.asarray(loss.hessian(_points(b, loss.dim))))
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

    Weighted least squares of :math:`\log\tau` against :math:`1/T`, weights
    :math:`(\tau / \sigma_\tau)^2` when ``times_se`` is given. The Kramers law gives the slope
    :math:`\Delta C` as :math:`T \to 0`; at finite :math:`T` the prefactor's :math:`O(T)`
    corrections bend the line. The standard error is from the residuals (``n - 2``
    degrees of freedom) when there are more than two points and no ``times_se``,
    else from ``times_se`` (0 for two points without it).
    """
    T = np.asarray(temperatures, dtype=float).ravel()
    tau = np.asarray(times, dtype=float).ravel()
    if T.size != tau.size or T.size < 2:
        raise ShapeError(f"need >= 2 temperatures and times of one length, got {T.size}, {tau.size}")
    if not (np.all(T > 0) and np.all(tau > 0) and np.isfinite(T).all() and np.isfinite(tau).all()):
        raise ConfigError("temperatures and times must be finite and positive")
    x, y = 1.0 / T, np.log(tau)
    w = np.ones_like(x) if times_se is None else (tau / np.asarray(times_se, dtype=float).ravel()) ** 2
    xm, ym = np.average(x, weights=w), np.average(y, weights=w)
    sxx = np.sum(w * (x - xm) ** 2)
    if sxx == 0:
        raise ShapeError("all temperatures are equal")
    slope = np.sum(w * (x - xm) * (y - ym)) / sxx
    res = y - ym - slope * (x - xm)
    if times_se is not None:
        se = np.sqrt(1.0 / sxx)
    else:
        se = np.sqrt(np.sum(w * res ** 2) / (T.size - 2) / sxx) if T.size > 2 else 0.0
    return ArrheniusFit(float(slope), float(se), float(np.exp(ym - slope * xm)))


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
