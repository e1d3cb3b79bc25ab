"""Densities: ensemble snapshots over time and Fokker-Planck heat maps with current streamlines."""

from __future__ import annotations

import numpy as np

from sdesim.plot.landscape import contours


def snapshots(loss, result, times, bounds, axes=None, bins=80):
    """2D histograms of an ensemble at the recorded times closest to ``times``, over the landscape."""
    import matplotlib.pyplot as plt
    if axes is None:
        _, axes = plt.subplots(1, len(times), figsize=(3.2 * len(times), 3.2), squeeze=False)
        axes = axes[0]
    for ax, t in zip(axes, times):
        i = int(np.argmin(np.abs(result.t - t)))
        contours(loss, bounds, ax, levels=16)
        w = result.w[i][~result.diverged]
        ax.hist2d(w[:, 0], w[:, 1], bins=bins, range=bounds, cmap="magma", cmin=1, density=True, alpha=0.9)
        ax.set_title(f"t = {result.t[i]:.3g}")
    return axes


def heatmap(grid, rho, ax=None, current=None, loss=None, log=False, density=8):
    """A 2D density on its grid, with the probability current as streamlines.

    Parameters
    ----------
    grid : Grid
        ``grid.axes`` gives the cell centres along each axis.
    rho : array of ``grid.shape``
    current : array ``(*grid.shape, 2)``, optional
        Probability current :math:`J`; streamline width follows :math:`|J|`. A
        current at round-off level (detailed balance) is reported as ``J = 0``
        instead of drawing streamlines of noise.
    loss : optional
        Contour lines of the loss on top.
    """
    import matplotlib.pyplot as plt
    ax = ax or plt.gca()
    x, y = grid.axes
    values = np.log10(np.maximum(rho, rho.max() * 1e-12)) if log else rho
    mesh = ax.pcolormesh(x, y, values.T, shading="auto", cmap="viridis")
    plt.colorbar(mesh, ax=ax, label=r"$\log_{10}\rho$" if log else r"$\rho$")
    if loss is not None:
        X, Y = np.meshgrid(x, y, indexing="ij")
        ax.contour(X, Y, loss.value(np.stack([X, Y], -1)), levels=12, colors="white", linewidths=0.4)
    if current is not None:
        speed = np.hypot(current[..., 0], current[..., 1])
        extent = max(x[-1] - x[0], y[-1] - y[0])
        if speed.max() <= 1e-9 * rho.max() * extent:          # detailed balance: J = 0 to round-off
            ax.text(0.02, 0.96, "J = 0 (equilibrium)", transform=ax.transAxes, color="white", va="top")
            current = None
    if current is not None:
        width = 0.3 + 2.0 * speed.T / max(speed.max(), 1e-300)
        ax.streamplot(x, y, current[..., 0].T, current[..., 1].T, color="white", linewidth=width,
                      density=density / 8, arrowsize=0.7)
    ax.set(xlim=(x[0], x[-1]), ylim=(y[0], y[-1]), aspect="equal")
    return ax
