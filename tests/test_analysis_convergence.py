"""Order fits on synthetic data with known slopes."""

import numpy as np
import pytest

from sdesim.analysis.convergence import assert_order, fit_order
from sdesim.errors import NonFiniteError, ShapeError


@pytest.mark.parametrize("order", [0.5, 1.0, 2.0, 3.0])
def test_exact_power_law(order):
    h = np.array([0.1, 0.05, 0.025, 0.0125])
    fit = fit_order(h, 3.0 * h ** order)
    assert fit.slope == pytest.approx(order, abs=1e-12)
    assert fit.prefactor == pytest.approx(3.0, rel=1e-10)
    assert fit.slope_se < 1e-10
    np.testing.assert_allclose(fit.predict(h), 3.0 * h ** order)


def test_noisy_slope_within_standard_errors():
    """Log-normal noise of sd 0.05 on 8 points: the fitted slope lies within 4 standard errors, and
    the mean standard error matches the theoretical sigma / sqrt(Sxx) (c4(6 dof) = 0.959) within 10%."""
    rng = np.random.default_rng(1)
    h = 2.0 ** -np.arange(3, 11)
    x = np.log(h)
    theory_se = 0.05 / np.sqrt(np.sum((x - x.mean()) ** 2))
    z, se = [], []
    for _ in range(200):
        e = h ** 1.5 * np.exp(0.05 * rng.normal(size=h.size))
        fit = fit_order(h, e)
        z.append((fit.slope - 1.5) / fit.slope_se)
        se.append(fit.slope_se)
    z = np.array(z)
    assert np.mean(se) / (0.959 * theory_se) == pytest.approx(1.0, abs=0.1)
    assert np.abs(z).max() < 6                       # t with 6 dof; 200 draws
    assert abs(z.std() - np.sqrt(6 / 4)) < 0.3       # sd of t_6 is sqrt(6/4)


def test_weights_downweight_outlier():
    h = np.array([0.1, 0.05, 0.025, 0.0125])
    e = h ** 2
    e[0] *= 10
    assert abs(fit_order(h, e).slope - 2) > 0.5
    assert fit_order(h, e, weights=[1e-8, 1, 1, 1]).slope == pytest.approx(2.0, abs=1e-6)


def test_assert_order():
    h = np.array([0.1, 0.05, 0.025])
    assert_order(h, h ** 1.1, order=1.0, tol=0.2)
    with pytest.raises(AssertionError, match="fitted order 1.5"):
        assert_order(h, h ** 1.5, order=1.0, tol=0.2)


def test_bad_input():
    with pytest.raises(ShapeError):
        fit_order([0.1], [0.1])
    with pytest.raises(ShapeError):
        fit_order([0.1, 0.1], [0.1, 0.2])
    with pytest.raises(NonFiniteError):
        fit_order([0.1, 0.2], [0.0, 0.2])
    with pytest.raises(NonFiniteError):
        fit_order([0.1, np.nan], [0.1, 0.2])
