"""Catalog landscapes: every stored critical point is one, of the stored index and value."""

import subprocess
import sys

import numpy as np
import pytest

import sdesim as sd
from sdesim.losses.catalog import CriticalPoint, Landscape

catalog = sd.catalog

LANDSCAPES = {}


def landscape(name, **params):
    """Build once per test session (Numba compilation dominates)."""
    key = (name, tuple(sorted(params.items())))
    if key not in LANDSCAPES:
        LANDSCAPES[key] = catalog.get(name, **params)
    return LANDSCAPES[key]


CASES = [(name, {}) for name in catalog.names()] + [
    ("tilted_double_well_1d", {"c": 0.4}), ("tilted_double_well_1d", {"c": -1.0}),
    ("tilted_double_well_2d", {"c": -0.6}), ("rosenbrock", {"a": -0.5, "b": 10.0}),
    ("factorisation", {"a": 3.0}), ("sharp_flat", {"sharp": 40.0, "flat": 0.5}),
    ("linear_regression", {"n": 40, "d": 3, "noise": 0.1, "seed": 7}),
    ("logistic_regression", {"n": 50, "d": 3, "seed": 3, "l2": 0.05}),
]


def case_id(case):
    name, params = case
    return name + "".join(f"-{k}={v}" for k, v in params.items())


def test_catalog_size_and_registry():
    assert len(catalog.names()) >= 13
    assert len(set(catalog.names())) == len(catalog.names())
    with pytest.raises(KeyError, match="unknown landscape 'nope'"):
        catalog.get("nope")


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_stored_critical_points(case):
    name, params = case
    ls = landscape(name, **params)
    assert isinstance(ls, Landscape) and ls.name == name
    assert ls.critical_points and len(ls.bounds) == ls.dim
    for cp in ls.critical_points:
        assert isinstance(cp, CriticalPoint) and len(cp.location) == ls.dim
        w = np.array(cp.location)
        assert all(lo <= v <= hi for v, (lo, hi) in zip(w, ls.bounds)), (name, cp.name, "outside bounds")
        hess = ls.hessian(w)
        ev = np.linalg.eigvalsh(hess)
        scale = max(1.0, float(np.abs(ev).max()))
        tol = 1e-8 * scale
        assert np.linalg.norm(ls.grad(w)) < tol * max(1.0, float(np.abs(w).max())), (name, cp.name)
        assert float(ls.value(w)) == pytest.approx(cp.value, abs=1e-8 * max(1.0, abs(cp.value))), (name, cp.name)
        if cp.degenerate:
            assert np.sum(np.abs(ev) <= tol) >= 1, (name, cp.name, ev)
        else:
            assert np.all(np.abs(ev) > tol), (name, cp.name, ev)
        if cp.index is not None:
            assert int(np.sum(ev < -tol)) == cp.index, (name, cp.name, ev)


@pytest.mark.parametrize("name,counts", [
    ("double_well_1d", (2, 0, 1)), ("double_well_2d", (2, 1, 0)), ("tilted_double_well_1d", (2, 0, 1)),
    ("tilted_double_well_2d", (2, 1, 0)), ("muller_brown", (3, 2, 0)), ("rosenbrock", (1, 0, 0)),
    ("himmelblau", (4, 4, 1)), ("six_hump_camel", (6, 7, 2)), ("styblinski_tang", (4, 4, 1)),
    ("saddle", (0, 1, 0)), ("monkey_saddle", (0, 1, 0)), ("sharp_flat", (2, 0, 1)),
])
def test_critical_point_counts(name, counts):
    ls = landscape(name)
    assert (len(ls.minima), len(ls.saddles), len(ls.maxima)) == counts


def test_muller_brown_matches_published_values():
    ls = landscape("muller_brown")
    published_minima = [((-0.558, 1.442), -146.70), ((0.623, 0.028), -108.17), ((-0.050, 0.467), -80.77)]
    published_saddles = [((0.212, 0.293), -72.25), ((-0.822, 0.624), -40.66)]
    for points, published in ((ls.minima, published_minima), (ls.saddles, published_saddles)):
        for cp, (loc, value) in zip(points, published):
            np.testing.assert_allclose(cp.location, loc, atol=1e-3)
            assert cp.value == pytest.approx(value, abs=0.01)
    assert ls.global_minimum.name == "minimum A"


def test_double_wells_closed_forms():
    ls = landscape("double_well_2d")
    for cp in ls.minima:
        assert abs(cp.location[0]) == pytest.approx(np.sqrt(65) / 8, rel=1e-15)
        assert cp.value == -129 / 4096
    assert catalog.double_well().name == "double_well_2d"
    assert catalog.double_well(dim=1).name == "double_well_1d"
    tilted = landscape("tilted_double_well_1d", c=0.4)
    assert tilted.params["c"] == 0.4
    assert tilted.minima[0].value < tilted.minima[1].value  # c > 0 lowers the left well
    # beyond |c| = 8 / (3 sqrt 3) the metastable well disappears
    assert len(catalog.tilted_double_well_1d(c=2.0).critical_points) == 1


def test_monkey_saddle_is_degenerate_saddle():
    ls = landscape("monkey_saddle")
    (cp,) = ls.critical_points
    assert cp.index is None and cp.degenerate and cp.kind == "saddle"
    np.testing.assert_allclose(ls.hessian(np.zeros(2)), 0.0, atol=1e-15)
    angles = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    circle = 1e-2 * np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    around = ls.value(circle) - cp.value
    assert around.min() < 0 < around.max()


@pytest.mark.parametrize("a", [1.0, 3.0])
def test_factorisation_manifold_sharpness(a):
    ls = landscape("factorisation", a=a)
    manifold = ls.minima_manifold
    assert manifold is not None
    for s in (0.3, 1.0, -2.0, 5.0):
        w = np.array(manifold.point(s))
        assert w[0] * w[1] == pytest.approx(a)
        np.testing.assert_allclose(ls.grad(w), 0.0, atol=1e-12)
        assert np.linalg.eigvalsh(ls.hessian(w))[-1] == pytest.approx(manifold.sharpness(s), rel=1e-12)
    assert manifold.sharpness(np.sqrt(a)) == pytest.approx(2 * a)
    assert all(cp.degenerate for cp in ls.minima)


def test_sharp_flat_curvatures_and_equal_depth():
    ls = landscape("sharp_flat", sharp=40.0, flat=0.5)
    sharp, flat = ls.minima
    assert sharp.location == (-1.0,) and flat.location == (1.0,)
    assert sharp.value == flat.value == 0.0
    assert ls.hessian(np.array([-1.0]))[0, 0] == pytest.approx(40.0, rel=1e-12)
    assert ls.hessian(np.array([1.0]))[0, 0] == pytest.approx(0.5, rel=1e-12)
    assert ls.maxima[0].value > 0


def test_finite_sum_minimisers():
    lin = landscape("linear_regression")
    assert isinstance(lin.loss, sd.FiniteSumLoss) and lin.loss.n_samples == 64
    w = np.array(lin.minima[0].location)
    X = np.stack([lin.loss.data["x"][:, 0], lin.loss.data["x"][:, 1]], axis=1)
    np.testing.assert_allclose(lin.hessian(w), X.T @ X / 64, rtol=1e-12)
    np.testing.assert_allclose(lin.grad(w), 0.0, atol=1e-13)
    # the same seed gives the same data
    assert catalog.linear_regression().minima[0].location == lin.minima[0].location
    logit = landscape("logistic_regression")
    w = np.array(logit.minima[0].location)
    np.testing.assert_allclose(logit.grad(w), 0.0, atol=1e-12)
    assert logit.value(w) < logit.value(w + 0.1)


def test_landscape_forwards_and_is_frozen():
    ls = landscape("saddle")
    W = np.random.default_rng(0).normal(size=(5, 2))
    np.testing.assert_array_equal(ls.value(W), ls.loss.value(W))
    np.testing.assert_array_equal(ls.grad(W), ls.loss.grad(W))
    with pytest.raises(AttributeError):
        ls.name = "other"
    with pytest.raises(TypeError):
        landscape("rosenbrock").params["a"] = 2.0


def test_bad_parameters():
    with pytest.raises(ValueError, match="b > 0"):
        catalog.rosenbrock(b=-1.0)
    with pytest.raises(ValueError, match="a > 0"):
        catalog.factorisation(a=0.0)
    with pytest.raises(ValueError, match="positive curvatures"):
        catalog.sharp_flat(sharp=-1.0)
    with pytest.raises(ValueError, match="l2 > 0"):
        catalog.logistic_regression(l2=0.0)


def test_catalog_import_is_lazy():
    code = "import sys, sdesim.losses.catalog; print('sympy' in sys.modules, 'numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
