"""Basin fractions over (lr, B): symmetric and Gibbs cases with known answers."""

import numpy as np
import pytest

import sdesim as sd
from sdesim.analysis.escape import Basins
from sdesim.analysis.phase import (
    basin_fractions,
    basin_masses,
    gibbs_basin_probabilities,
    phase_diagram,
)
from sdesim.errors import ShapeError


def test_symmetric_well_from_saddle_splits_evenly():
    """SGD (unit per-sample noise) on (x^2 - 1)^2 from the saddle x = 0, 4000 runs per setting to t = 20:
    each minimum gets 1/2 within 4 binomial standard errors (se = 0.0079)."""
    dw = sd.catalog.double_well_1d()
    pd = phase_diagram(dw.loss, Basins.from_landscape(dw), [(0.05, 1), (0.2, 4)], w0=[0.0], n_particles=4000,
                       t_end=20)
    np.testing.assert_allclose(pd.temperature, [0.025, 0.025])
    assert pd.fractions.shape == (2, 2) and pd.n == 4000
    assert np.all(np.abs(pd.fractions - 0.5) < 4 * pd.se)
    assert np.all(pd.unassigned == 0)


def test_tilted_well_long_times_reach_gibbs_occupations():
    """Isotropic SGD diffusion at T = lr/2B = 0.4 on the tilted well (c = 0.25), all 4000 runs started in the
    shallower minimum, t = 60 (about 10 relaxation times), dt = 0.005: the basin fractions match the Gibbs
    probabilities (quadrature of exp(-C/T) split at the saddle: 0.7555, 0.2445) within 4 binomial se, and
    the Fokker-Planck steady state's basin masses to 1e-3."""
    tw = sd.catalog.tilted_double_well_1d(c=0.25)
    basins = Basins.from_landscape(tw, method="gradient")
    gibbs = gibbs_basin_probabilities(tw.loss, basins, 0.4, [(-3.0, 3.0)])
    np.testing.assert_allclose(gibbs, [0.7555, 0.2445], atol=1e-4)
    grid = sd.Grid([(-3.0, 3.0)], (600,))
    rho = sd.FokkerPlanck(tw.loss, temperature=0.4, grid=grid).steady_state()
    np.testing.assert_allclose(basin_masses(grid, rho, basins), gibbs, atol=1e-3)
    pd = phase_diagram(tw.loss, basins, [(0.8, 1)], w0=[tw.minima[1].location[0]], n_particles=4000, t_end=60,
                       dynamic=lambda lr, b: sd.SGDDiffusion(lr=lr, batch_size=b), dt=0.005)
    assert np.all(np.abs(pd.fractions[0] - gibbs) < 4 * pd.se[0]), (pd.fractions, pd.se, gibbs)


def test_basin_fractions_counts_and_bad_input():
    basins = Basins([[-1.0], [1.0]])
    fr = basin_fractions(np.array([[-1.0], [-0.5], [0.7], [np.nan]]), basins)
    np.testing.assert_allclose(fr.fractions, [0.5, 0.25])
    np.testing.assert_allclose(fr.se, np.sqrt([0.25 / 4, 0.1875 / 4]))
    assert fr.unassigned == 0.25
    with pytest.raises(ShapeError):
        basin_fractions(np.zeros(3), basins)
    with pytest.raises(ValueError, match="empty"):
        phase_diagram(sd.catalog.double_well_1d().loss, basins, [], w0=[0.0], n_particles=2, t_end=1)
    with pytest.raises(ValueError, match="temperature"):
        gibbs_basin_probabilities(sd.catalog.double_well_1d().loss, basins, 0.0, [(-2, 2)])
