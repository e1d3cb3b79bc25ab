r"""Convergence-order fits: the slope of :math:`\log(\text{error})` against :math:`\log(\text{step})`.

An integrator of strong order :math:`p` has :math:`E(h) \approx c\, h^p`; a modified flow of
order :math:`p` tracks GD to :math:`O(\eta^{p+1})`. The fitted slope is compared with the
theoretical order within a stated tolerance (diffrax uses 0.4 for strong orders).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sdesim.errors import NonFiniteError
from sdesim.linalg import fit_line

__all__ = ["OrderFit", "assert_order", "fit_order"]


@dataclass(frozen=True)
class OrderFit:
    r"""Least-squares fit :math:`\log E = \log c + p \log h`.

    Attributes
    ----------
    slope : float
        Fitted order :math:`p`.
    slope_se : float
        Its standard error from the residuals (0 for two points, which fit exactly).
    prefactor : float
        :math:`c`.
    residual : float
        Root-mean-square residual in :math:`\log E`.
    """

    slope: float
    slope_se: float
    prefactor: float
    residual: float

    def predict(self, step):
        """:math:`c\\, h^p`."""
        return self.prefactor * np.asarray(step, dtype=float) ** self.slope


def fit_order(steps, errors, weights=None) -> OrderFit:
    r"""Fit the order :math:`p` in :math:`E(h) = c h^p` by (weighted) least squares in log-log.

    Parameters
    ----------
    steps, errors : array_like, shape (n,)
        Step sizes :math:`h > 0` (``lr`` or ``dt``) and errors :math:`E > 0`, ``n >= 2``.
    weights : array_like, shape (n,), optional
        Weights of the squared log residuals, e.g. :math:`(E / \sigma_E)^2` for Monte
        Carlo errors with standard errors :math:`\sigma_E`.

    Returns
    -------
    OrderFit
        The line and its slope standard error are :func:`sdesim.linalg.fit_line`'s, on
        :math:`(\log h, \log E)`: :math:`\sqrt{s^2 / \sum_i w_i (x_i - \bar x)^2}`, with
        :math:`s^2` the weighted residual variance on ``n - 2`` degrees of freedom.

    Raises
    ------
    ShapeError
        Mismatched lengths, fewer than two points, or all steps equal.
    NonFiniteError
        Non-finite or non-positive steps, errors or weights.
    """
    h = np.asarray(steps, dtype=float).ravel()
    e = np.asarray(errors, dtype=float).ravel()
    if not (np.isfinite(h).all() and np.isfinite(e).all() and (h > 0).all() and (e > 0).all()):
        raise NonFiniteError(f"steps and errors must be finite and positive, got steps {h}, errors {e}")
    line = fit_line(np.log(h), np.log(e), weights)
    return OrderFit(slope=line.slope, slope_se=line.slope_se, prefactor=float(np.exp(line.intercept)),
                    residual=float(np.sqrt(np.mean(line.residuals ** 2))))


def assert_order(steps, errors, order, tol=0.2, weights=None) -> OrderFit:
    """Fit the order and raise ``AssertionError`` unless ``|slope - order| <= tol``.

    Returns the :class:`OrderFit`; the message names the slope, its standard error and the data.
    """
    fit = fit_order(steps, errors, weights)
    if not abs(fit.slope - order) <= tol:
        raise AssertionError(f"fitted order {fit.slope:.3f} +- {fit.slope_se:.3f}, expected {order} +- {tol} "
                             f"(steps {np.asarray(steps).tolist()}, errors {np.asarray(errors).tolist()})")
    return fit
