"""Landscapes with trajectories of every lens overlaid, and loss curves over time."""

from __future__ import annotations

import numpy as np

from sdesim.plot.style import colour_for


def _grid(loss, bounds, n):
    (x0, x1), (y0, y1) = bounds
    X, Y = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n))
    return X, Y, loss.value(np.stack([X, Y], axis=-1))


def contours(loss, bounds, ax, n=200, levels=30):
    """Filled contours of a 2D loss over ``bounds = [(x0, x1), (y0, y1)]``."""
    X, Y, Z = _grid(loss, bounds, n)
    lo, hi = np.percentile(Z, [0, 90])
    cs = ax.contourf(X, Y, np.minimum(Z, hi), levels=np.linspace(lo, hi, levels), cmap="Greys_r", alpha=0.8)
    ax.contour(X, Y, Z, levels=np.linspace(lo, hi, levels // 2), colors="white", linewidths=0.3)
    names = getattr(loss, "names", ("w0", "w1"))
    ax.set(xlabel=names[0], ylabel=names[1], xlim=bounds[0], ylim=bounds[1], aspect="equal")
    return cs


def trajectories(loss, results, bounds, ax=None, cloud=True, max_paths=3):
    """Landscape contours with each result's paths (or ensemble mean path) and final cloud.

    Deterministic results (one particle, or identical particles) are drawn as a
    line; stochastic ones as a few sample paths, the ensemble mean and the final
    cloud of particles.
    """
    import matplotlib.pyplot as plt
    ax = ax or plt.gca()
    contours(loss, bounds, ax)
    for i, res in enumerate(results):
        colour = colour_for(res.label, i)
        w = res.w
        spread = np.nanstd(w[-1], axis=0).max() if w.shape[1] > 1 else 0.0
        if spread < 1e-12:
            ax.plot(w[:, 0, 0], w[:, 0, 1], color=colour, lw=1.6, label=res.label)
            continue
        for p in range(min(max_paths, w.shape[1])):
            ax.plot(w[:, p, 0], w[:, p, 1], color=colour, lw=0.5, alpha=0.5)
        if cloud:
            final = w[-1][~res.diverged][:2000]
            ax.scatter(final[:, 0], final[:, 1], s=2, color=colour, alpha=0.3, lw=0)
        mean = res.mean()
        ax.plot(mean[:, 0], mean[:, 1], color=colour, lw=1.6, ls="--", label=f"{res.label} (mean)")
    ax.legend(loc="lower left", fontsize=7)
    return ax


def loss_curves(results, ax=None, offset=0.0):
    """Mean of ``loss - offset`` against time ``t = k * lr``, with a 10-90% band for ensembles."""
    import matplotlib.pyplot as plt
    ax = ax or plt.gca()
    for i, res in enumerate(results):
        colour = colour_for(res.label, i)
        values = res.loss - offset
        mean = np.nanmean(values, axis=1)
        ax.plot(res.t, mean, color=colour, label=res.label)
        if res.n_particles > 1 and np.nanstd(res.loss[-1]) > 0:
            lo, hi = np.nanpercentile(values, [10, 90], axis=1)
            ax.fill_between(res.t, lo, hi, color=colour, alpha=0.15, lw=0)
    ax.set(xlabel="t = k lr", ylabel="loss")
    ax.legend()
    return ax
