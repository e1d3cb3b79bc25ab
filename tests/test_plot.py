"""Plot functions run headless and draw the expected artists."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from figure_checks import legend_hits, overlapping_tick_labels  # noqa: E402

import sdesim as sd  # noqa: E402
from sdesim import plot  # noqa: E402
from sdesim.errors import ShapeError  # noqa: E402

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

    grid = sd.Grid([(-2, 2), (-1.5, 1.5)], (40, 30))
    X, Y = np.meshgrid(*grid.axes, indexing="ij")
    rho = np.exp(-LOSS.value(np.stack([X, Y], -1)) / 0.2)
    J = np.stack([-Y, X], axis=-1) * rho[..., None]
    ax = plot.heatmap(grid, rho, ax=plt.figure().gca(), current=J, loss=LOSS, log=True)
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
    r = results[1]
    frames = sd.Result(t=r.t[::10], w=r.w[::10], loss=r.loss[::10], metadata=r.metadata)   # 11 frames
    path = plot.animate.ensemble(LOSS, [frames], BOUNDS, tmp_path / "cloud.gif", max_points=100)
    assert path.exists() and path.stat().st_size > 1000


# --- the plotting contract, checked on the artists (no images) ---------------------------------------

def _result(label, loss, t=None, diverged_at=None, w=None):
    """A hand-made Result: ``loss (T, N)``, states zero unless given."""
    loss = np.asarray(loss, float)
    t = np.arange(loss.shape[0], dtype=float) if t is None else t
    w = np.zeros(loss.shape + (2,)) if w is None else w
    return sd.Result(t=t, w=w, loss=loss, metadata={"label": label, "bound": 1e8, "variables": ["x", "y"]},
                     diverged_at=diverged_at)


def _styles(ax):
    return {line.get_label(): (line.get_color(), line.get_linestyle()) for line in ax.lines
            if not line.get_label().startswith("_")}


def test_same_type_lenses_get_distinct_colours_and_styles():
    labels = ["SGD (lr=0.1, B=2)", "SGD (lr=0.1, B=16)", "GD (lr=0.1)", "SGD (lr=0.1, B=64)", "SDE isotropic",
              "my lens", "other lens"]
    styles = plot.styles_for(labels)
    pairs = [(s["color"], s["linestyle"]) for s in styles]
    assert len(set(pairs)) == len(pairs)
    assert len({s["color"] for s in styles}) == len(styles)   # colours alone tell them apart here
    assert pairs[0] == (plot.colour_for("SGD"), "-") and pairs[2] == (plot.colour_for("GD"), "-")
    assert all(ls != "-" for _, ls in (pairs[1], pairs[3]))   # repeats of a type: not solid

    rng = np.random.default_rng(0)
    results = [_result(label, 1 + rng.random((5, 40))) for label in labels[:3]]
    ax = plot.loss_curves(results, ax=plt.figure().gca())
    drawn = _styles(ax)
    assert len(drawn) == 3 and len(set(drawn.values())) == 3


def test_loss_curves_are_medians_with_a_labelled_band_robust_to_one_huge_particle():
    rng = np.random.default_rng(1)
    loss = 0.5 + 0.1 * rng.random((30, 501))
    loss[10:, 7] = 1.8e38                                     # one particle inside the bound, huge loss
    ax = plot.loss_curves([_result("SGD (lr=0.1, B=1)", loss)], ax=plt.figure().gca())
    line, = ax.lines
    np.testing.assert_allclose(line.get_ydata(), np.median(loss, axis=1))
    assert ax.get_ylim()[1] < 1.0 and ax.get_yscale() == "linear"
    assert len(ax.collections) == 1                           # the band
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "shaded: 10%-90% of particles" in texts
    assert "median" in ax.get_ylabel()


def test_loss_curves_state_the_particles_stopped_at_the_bound():
    loss = np.ones((4, 10))
    loss[2:, :3] = np.nan                                     # stopped at step 2
    res = _result("SGD (lr=0.1, B=1)", loss, diverged_at=np.array([2, 2, 2] + [-1] * 7))
    ax = plot.loss_curves([res, _result("GD (lr=0.1)", np.ones((4, 1)))], ax=plt.figure().gca())
    legend = ax.get_legend()
    assert "SGD (lr=0.1, B=1), 3 of 10 stopped" in [t.get_text() for t in legend.get_texts()]
    assert legend.get_title().get_text() == "stopped (|w_i| > 1e+08): left out"
    np.testing.assert_allclose(ax.lines[0].get_ydata(), 1.0)   # the median of the particles left


def test_heatmap_labels_axes_and_colour_bar():
    grid = sd.Grid([(-2, 2), (-1.5, 1.5)], (20, 15))
    tau = np.ones(grid.shape)
    ax = plot.heatmap(grid, tau, ax=plt.figure().gca(), loss=LOSS, label="mean first-passage time")
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x", "y")
    colour_bar = ax.figure.axes[-1]
    assert colour_bar.get_ylabel() == "mean first-passage time"
    ax = plot.heatmap(grid, tau, ax=plt.figure().gca(), names=("a", "b"))
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.figure.axes[-1].get_ylabel()) == ("a", "b", r"density $\rho$")


def test_heatmap_of_a_3d_grid_shows_a_marginal():
    grid = sd.Grid([(-1, 1), (-2, 2), (0, 1)], (8, 10, 4))
    rho = grid.normalize(np.exp(-np.sum(grid.centers ** 2, axis=-1)))
    ax = plot.heatmap(grid, rho, ax=plt.figure().gca(), variables=(2, 0), current=np.ones(grid.shape + (3,)))
    mesh = ax.collections[0]
    marginal = rho.sum(axis=1).T * grid.spacing[1]              # (z, x) from (x, y, z)
    np.testing.assert_allclose(np.asarray(mesh.get_array()).reshape(8, 4).T, marginal)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("w2", "w0")
    with pytest.raises(ShapeError, match="two different axes"):
        plot.heatmap(grid, rho, variables=(1, 1))


LOSS3 = sd.Loss("(x**2 - 1)**2 + 2*y**2 + 0.5*x*y + 3*z**2 + 0.3*x*z")


@pytest.fixture(scope="module")
def results3():
    return [sd.simulate(LOSS3, d, [-0.3, 1.3, 0.5], n, t_end=1.0, backend="numpy", seed=0)
            for d, n in ((sd.GD(0.1), 1), (sd.SGD(0.1, 4), 50))]


def test_three_variables_in_a_chosen_plane_or_the_hessian_plane(results3):
    with pytest.raises(ShapeError, match="plane="):
        plot.trajectories(LOSS3, results3)
    ax = plot.trajectories(LOSS3, results3, ax=plt.figure().gca(), plane=("x", "z"))
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x", "z")
    gd = next(line for line in ax.lines if line.get_label().startswith("GD"))
    np.testing.assert_allclose(gd.get_xydata(), results3[0].w[:, 0][:, [0, 2]])
    ax = plot.trajectories(LOSS3, results3, ax=plt.figure().gca(), plane="hessian")
    assert "Hessian" in ax.get_xlabel() and "Hessian" in ax.get_ylabel()
    axes = plot.snapshots(LOSS3, results3[1], [0.0, 1.0], plane=("y", "z"))
    assert (axes[0].get_xlabel(), axes[0].get_ylabel()) == ("y", "z")


def test_hessian_plane_spans_the_sharpest_directions():
    qm = sd.QuadraticModel(hessian=np.diag([1.0, 5.0, 3.0]), w_star=[1.0, 0.0, 0.0])
    plane = plot.hessian_plane(qm, [1.0, 0.0, 0.0])
    np.testing.assert_allclose(np.abs(plane.basis), [[0, 1, 0], [0, 0, 1]], atol=1e-8)
    assert plane.names[0].endswith("h = 5)") and plane.names[1].endswith("h = 3)")
    np.testing.assert_allclose(plane.coords(plane.lift(np.array(0.3), np.array(-0.2))), [0.3, -0.2])
    with pytest.raises(ShapeError, match="unknown variable 'q'"):
        plot.variables(LOSS3, ("x", "q"))


def test_legends_cover_no_data(results):
    many = results + [sd.simulate(LOSS, sd.SGD(0.1, b), [-1.5, 1.0], 100, t_end=2.0, record_every=2, seed=b,
                                  backend="numpy") for b in (2, 16)]
    for draw in (lambda ax: plot.trajectories(LOSS, many, BOUNDS, ax=ax), lambda ax: plot.loss_curves(many, ax=ax)):
        ax = draw(plt.figure(figsize=(5, 4)).gca())
        assert legend_hits(ax) == 0
        assert len(set(_styles(ax).values())) == len(many)


def test_tidy_ticks_leaves_no_overlapping_labels():
    fig, ax = plt.subplots(figsize=(2.5, 2))
    ax.semilogx([0.04, 0.6], [0, 1])                           # less than two decades: minor labels
    plot.use()
    assert overlapping_tick_labels(fig)
    plot.style.tidy_ticks(fig)
    assert not overlapping_tick_labels(fig)
