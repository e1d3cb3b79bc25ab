"""Stationary states: histograms against Gibbs, covariance ellipses against Lyapunov."""

from __future__ import annotations

import numpy as np

from sdesim.plot.style import colour_for, legend


def against_gibbs(result, loss, temperature, ax=None, axis=0, bounds=None, burn_in=0.0, bins=80):
    r"""Marginal of a 1D/2D ensemble (times after ``burn_in`` pooled) against :math:`e^{-C/T}`."""
    import matplotlib.pyplot as plt
    ax = ax or plt.gca()
    w = result.w[result.t >= burn_in][:, ~result.diverged].reshape(-1, result.dim)
    lo, hi = bounds or (np.percentile(w[:, axis], 0.1), np.percentile(w[:, axis], 99.9))
    ax.hist(w[:, axis], bins=bins, range=(lo, hi), density=True, histtype="stepfilled", alpha=0.4,
            color=colour_for(result.label), label=result.label)
    x = np.linspace(lo, hi, 600)
    if result.dim == 1:
        C = loss.value(x[:, None])
        rho = np.exp(-(C - C.min()) / temperature)
    else:
        others = [np.linspace(*np.percentile(w[:, j], [0.01, 99.99]), 300) for j in range(result.dim) if j != axis]
        grids = np.meshgrid(x, *others, indexing="ij")
        order = [axis] + [j for j in range(result.dim) if j != axis]
        W = np.stack([grids[order.index(j)] for j in range(result.dim)], axis=-1)
        C = loss.value(W)
        rho = np.exp(-(C - C.min()) / temperature).reshape(len(x), -1).sum(axis=1)
    rho /= np.trapezoid(rho, x)
    ax.plot(x, rho, "k--", lw=1.2, label=rf"Gibbs $e^{{-C/T}}$, T = {temperature:g}")
    ax.set(xlabel=_names(result)[axis], ylabel="density")
    legend(ax)
    return ax


def ellipse(ax, mean, cov, n_sigma=2.0, *args, **kwargs):
    """Draw the ``n_sigma`` ellipse of a 2D Gaussian with ``mean`` and ``cov`` (extra args to ``plot``)."""
    mu, U = np.linalg.eigh(np.asarray(cov)[:2, :2])
    theta = np.linspace(0, 2 * np.pi, 200)
    pts = (U * (n_sigma * np.sqrt(np.maximum(mu, 0)))) @ np.stack([np.cos(theta), np.sin(theta)])
    return ax.plot(mean[0] + pts[0], mean[1] + pts[1], *args, **kwargs)


def covariance_ellipses(result, predictions: dict, ax=None, n_sigma=2.0, burn_in=0.0, max_points=3000):
    """Measured covariance (cloud and ellipse) against named predictions ``{label: cov}``."""
    import matplotlib.pyplot as plt
    ax = ax or plt.gca()
    w = result.w[result.t >= burn_in][:, ~result.diverged].reshape(-1, result.dim)
    mean = w.mean(axis=0)
    colour = colour_for(result.label)
    ax.scatter(*w[:max_points, :2].T, s=2, alpha=0.3, color=colour, lw=0)
    ellipse(ax, mean, np.cov(w.T), n_sigma, color=colour, lw=2, label=f"{result.label}: measured")
    for (label, cov), style in zip(predictions.items(), ["k--", "k:", "k-."]):
        ellipse(ax, mean, cov, n_sigma, style, lw=1.2, label=label)
    names = _names(result)
    ax.set(aspect="equal", xlabel=names[0], ylabel=names[1], title=f"{n_sigma:g}-sigma covariance ellipses")
    legend(ax)
    return ax


def _names(result):
    """The variable names of a result (``w0``, ``w1``, ... when it has none)."""
    return result.metadata.get("variables") or [f"w{i}" for i in range(result.dim)]
