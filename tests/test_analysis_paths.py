"""Paths: the nudged elastic band recovers Mueller-Brown's saddles; interpolation and averaging."""

import numpy as np
import pytest

import sdesim as sd
from sdesim.analysis.paths import (
    average,
    interpolate,
    interpolation_barrier,
    nudged_elastic_band,
)
from sdesim.errors import ShapeError


@pytest.fixture(scope="module")
def mb():
    return sd.catalog.muller_brown()


@pytest.mark.parametrize("ends, energy, location", [
    ((0, 2), -40.66, (-0.822, 0.624)),     # A -> C over the upper saddle
    ((2, 1), -72.25, (0.212, 0.293)),      # C -> B over the lower saddle
])
def test_climbing_image_neb_finds_muller_brown_saddles(mb, ends, energy, location):
    """CI-NEB with 15 images between two minima: saddle energy within 0.05 of the published value,
    location within 0.005, and equal to the catalog's Newton-refined saddle to 1e-4."""
    a, b = (mb.minima[i] for i in ends)
    path = nudged_elastic_band(mb.loss, a, b, n_images=15)
    assert path.converged, path.max_force
    assert path.saddle_value == pytest.approx(energy, abs=0.05)
    np.testing.assert_allclose(path.saddle, location, atol=5e-3)
    ref = min(mb.saddles, key=lambda s: np.linalg.norm(np.subtract(s.location, path.saddle)))
    np.testing.assert_allclose(path.saddle, ref.location, atol=1e-4)
    assert path.barrier == pytest.approx(energy - mb.loss.value(np.array(a.location)), abs=0.05)
    assert np.all(np.linalg.norm(np.diff(path.images, axis=0), axis=1) > 0)


def test_band_from_a_to_b_crosses_both_saddles(mb):
    """A -> B: the path has two local maxima; the climbing image sits on the higher saddle (-40.66), and the
    lower one is within the band's resolution of -72.25."""
    path = nudged_elastic_band(mb.loss, mb.minima[0], mb.minima[1], n_images=21)
    assert path.converged
    assert path.saddle_value == pytest.approx(-40.66, abs=0.05)
    maxima = path.values[path.local_maxima()]
    assert len(maxima) == 2
    assert min(maxima) == pytest.approx(-72.25, abs=1.0)


def test_interpolation_and_averaging_on_a_quadratic():
    """C = x^2 + 4 y^2: along a -> b, C is the exact parabola in alpha; C(mean) <= mean C (Jensen), with the
    gap equal to the variance term of the points."""
    loss = sd.Loss("x**2 + 4*y**2")
    a, b = np.array([1.0, 1.0]), np.array([-1.0, 0.5])
    alpha, v = interpolate(loss, a, b, n=11, extend=0.5)
    w = (1 - alpha)[:, None] * a + alpha[:, None] * b
    np.testing.assert_allclose(v, w[:, 0] ** 2 + 4 * w[:, 1] ** 2)
    assert interpolation_barrier(loss, a, b) == pytest.approx(0.0, abs=1e-12)     # convex: no barrier
    W = np.random.default_rng(0).normal(size=(200, 2))
    avg = average(loss, np.vstack([W, [[np.nan, 0.0]]]))
    d = W - W.mean(axis=0)
    assert avg.gain == pytest.approx(np.mean(d[:, 0] ** 2 + 4 * d[:, 1] ** 2), rel=1e-10)
    pairs = interpolate(loss, W[:5], W[5:10], n=3)[1]
    assert pairs.shape == (3, 5)


def test_barrier_between_double_well_minima():
    dw = sd.catalog.double_well_1d()
    assert interpolation_barrier(dw.loss, [-1.0], [1.0]) == pytest.approx(1.0, abs=1e-12)
    avg = average(dw.loss, np.array([[-1.0], [1.0]]))
    assert avg.loss_of_mean == pytest.approx(1.0) and avg.mean_loss == pytest.approx(0.0)


def test_bad_input(mb):
    with pytest.raises(ValueError, match="n_images"):
        nudged_elastic_band(mb.loss, mb.minima[0], mb.minima[1], n_images=2)
    with pytest.raises(ValueError, match="coincide"):
        nudged_elastic_band(mb.loss, mb.minima[0], mb.minima[0])
    with pytest.raises(ShapeError):
        interpolate(mb.loss, [0.0], [1.0])
    with pytest.raises(ShapeError):
        nudged_elastic_band(mb.loss, mb.minima[0], mb.minima[1], n_images=5, initial=np.zeros((4, 2)))
    unconverged = nudged_elastic_band(mb.loss, mb.minima[0], mb.minima[1], max_steps=3)
    assert not unconverged.converged and unconverged.iterations == 3
