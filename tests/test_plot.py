"""Plot functions run headless and draw the expected artists."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import sdesim as sd  # noqa: E402
from sdesim import plot  # noqa: E402

LOSS = sd.Loss("(x**2 - 1)**2 + 2*y**2 + 0.5*x*y")
BOUNDS = [(-2.0, 2.0), (-1.5, 1.5)]


@pytest.fixture(scope="module")
def results():
    dyn = [sd.GD(0.1), sd.SGDDiffusion(0.1, 4)]
    return [sd.simulate(LOSS, d, [-1.5, 1.0], 1 if i == 0 else 300, t_end=2.0, record_every=2, seed=0)
            for i, d in enumerate(dyn)]


@pytest.fixture(autouse=True)
def close():
    yield
    plt.close("all")


def test_trajectories_and_loss_curves(results):
    plot.use()
    ax = plot.trajectories(LOSS, results, BOUNDS)
    assert len(ax.lines) >= 2 and ax.collections               # paths, mean path, cloud, contours
    assert [t.get_text() for t in ax.get_legend().get_texts()][0].startswith("GD")
    ax = plot.loss_curves(results, ax=plt.figure().gca())
    assert len(ax.lines) == 2


def test_snapshots_and_heatmap(results):
    axes = plot.snapshots(LOSS, results[1], times=[0.0, 1.0, 2.0], bounds=BOUNDS)
    assert [a.get_title() for a in axes] == ["t = 0", "t = 1", "t = 2"]

    class Grid:
        axes = (np.linspace(-2, 2, 40), np.linspace(-1.5, 1.5, 30))

    X, Y = np.meshgrid(*Grid.axes, indexing="ij")
    rho = np.exp(-LOSS.value(np.stack([X, Y], -1)) / 0.2)
    J = np.stack([-Y, X], axis=-1) * rho[..., None]
    ax = plot.heatmap(Grid, rho, ax=plt.figure().gca(), current=J, loss=LOSS, log=True)
    assert ax.collections                                     # mesh, contours, streamlines


def test_stationary_plots(results):
    ax = plot.against_gibbs(results[1], LOSS, 0.0125, burn_in=1.0)
    assert ax.patches and any("Gibbs" in t.get_text() for t in ax.get_legend().get_texts())
    ax = plot.covariance_ellipses(results[1], {"Lyapunov": np.eye(2) * 1e-3}, ax=plt.figure().gca())
    assert len(ax.lines) == 2


def test_diagrams():
    ax = plot.phase_diagram([0.01, 0.1, 1.0], [1, 8, 64], np.random.default_rng(0).random((3, 3)))
    assert ax.get_xscale() == "log"
    ax = plot.sharpness(np.arange(10), np.linspace(1, 19, 10), lr=0.1, ax=plt.figure().gca())
    assert ax.lines[1].get_ydata()[0] == pytest.approx(20.0)
    ax = plot.escape_times([0.1, 0.2], [100.0, 10.0], [5.0, 1.0], {"Kramers": [90.0, 9.0]},
                           ax=plt.figure().gca())
    assert ax.get_yscale() == "log"
    h = np.array([0.1, 0.05, 0.025])
    ax = plot.convergence(h, 3 * h**2, ax=plt.figure().gca())
    assert "slope 2.00" in ax.get_legend().get_texts()[0].get_text()


def test_animation_writes_a_gif(results, tmp_path):
    path = plot.animate.ensemble(LOSS, results[1:], BOUNDS, tmp_path / "cloud.gif", max_points=100)
    assert path.exists() and path.stat().st_size > 1000
