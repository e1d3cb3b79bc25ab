"""Densities: ensemble snapshots over time and Fokker-Planck heat maps with current streamlines."""

from __future__ import annotations

import numpy as np

from sdesim.errors import ShapeError
from sdesim.plot.landscape import contours, data_bounds
from sdesim.plot.plane import resolve


def snapshots(loss, result, times, bounds=None, axes=None, bins=80, plane=None):
    """2D histograms of an ensemble at the recorded times closest to ``times``, over the landscape.

    ``bounds`` (plane coordinates; default: around the recorded states) and ``plane``
    (for losses of more than two variables: two variable names, ``"hessian"`` or a
    ``Plane``) as in :func:`sdesim.plot.trajectories`. Each panel is shaded by the
    density of the particles left (stopped ones excluded).
    """
    import matplotlib.pyplot as plt
    if axes is None:
        _, axes = plt.subplots(1, len(times), figsize=(3.2 * len(times), 3.2), squeeze=False)
        axes = axes[0]
    plane = resolve(loss, plane, [result])
    xy = plane.coords(result.w)
    bounds = bounds or data_bounds([xy])
    for ax, t in zip(axes, times):
        i = int(np.argmin(np.abs(result.t - t)))
        contours(loss, bounds, ax, levels=16, plane=plane)
        w = xy[i][~result.diverged]
        ax.hist2d(w[:, 0], w[:, 1], bins=bins, range=bounds, cmap="magma", cmin=1, density=True, alpha=0.9)
        ax.set_title(f"t = {result.t[i]:.3g}")
    return axes


def heatmap(grid, rho, ax=None, current=None, loss=None, log=False, density=8, label=None, names=None,
            variables=(0, 1)):
    """A density (or any field) on its grid, with the probability current as streamlines.

    Parameters
    ----------
    grid : Grid
        ``grid.axes`` gives the cell centres along each axis.
    rho : array of ``grid.shape``
    current : array ``(*grid.shape, grid.dim)``, optional
        Probability current :math:`J`; streamline width follows :math:`|J|`. A
        current at round-off level (detailed balance) is reported as ``J = 0``
        instead of drawing streamlines of noise.
    loss : optional
        Contour lines of the loss on top (for grids of more than two dimensions,
        its minimum over the other axes).
    label : str, optional
        Colour-bar label (default ``"density rho"``), e.g. ``"mean first-passage time"``.
    names : pair of str, optional
        Axis labels (default: the loss's variable names, else ``w0``, ``w1``, ...).
    variables : pair of int
        The grid axes shown; a grid of more than two dimensions is summed over the
        others (the marginal density and the current of the marginal).
    """
    import matplotlib.pyplot as plt
    ax = ax or plt.gca()
    rho, current, keep = _on_plane(grid, rho, current, variables)
    x, y = (grid.axes[k] for k in keep)
    values = np.log10(np.maximum(rho, rho.max() * 1e-12)) if log else rho
    mesh = ax.pcolormesh(x, y, values.T, shading="auto", cmap="viridis")
    text = label or r"density $\rho$"
    plt.colorbar(mesh, ax=ax, label=rf"$\log_{{10}}$ {text}" if log else text)
    if loss is not None:
        X = np.stack(np.meshgrid(*grid.axes, indexing="ij"), -1)
        profile = _reduce(grid, np.asarray(loss.value(X), float), keep, np.min)
        ax.contour(x, y, profile.T, levels=12, colors="white", linewidths=0.4)
    if current is not None:
        _streamlines(ax, x, y, rho, current, density)
    default = list(getattr(loss, "names", None) or [f"w{k}" for k in range(len(grid.axes))])
    xlabel, ylabel = names or (default[keep[0]], default[keep[1]])
    ax.set(xlim=(x[0], x[-1]), ylim=(y[0], y[-1]), aspect="equal", xlabel=xlabel, ylabel=ylabel)
    return ax


def _on_plane(grid, rho, current, variables):
    """``rho`` and ``current`` on the two grid axes ``variables``, the others summed out."""
    dim = len(grid.axes)
    keep = tuple(int(v) for v in variables)
    if dim < 2 or len(keep) != 2 or keep[0] == keep[1] or not all(0 <= k < dim for k in keep):
        raise ShapeError(f"a heat map shows two different axes of a grid of 2 or more dimensions: got "
                         f"variables={list(variables)} on a {dim}D grid")
    shape = tuple(len(a) for a in grid.axes)
    rho = np.asarray(rho, float)
    if rho.shape != shape:
        raise ShapeError(f"rho must have the grid's shape {shape}, got {rho.shape}")
    rho = _reduce(grid, rho, keep, np.sum)
    if current is not None:
        current = np.asarray(current, float)
        if current.shape != shape + (dim,):
            raise ShapeError(f"current must have shape {shape + (dim,)}, got {current.shape}")
        current = np.stack([_reduce(grid, current[..., k], keep, np.sum) for k in keep], axis=-1)
    return rho, current, keep


def _reduce(grid, field, keep, how):
    """``field`` on the grid axes ``keep`` (in that order): the other axes summed (times their
    spacings: a marginal) or minimised."""
    dim = len(grid.axes)
    others = [k for k in range(dim) if k not in keep]
    moved = np.moveaxis(field, list(keep) + others, range(dim))
    if not others:
        return moved
    flat = moved.reshape(moved.shape[:2] + (-1,))
    if how is np.min:
        return flat.min(axis=2)
    return flat.sum(axis=2) * float(np.prod([grid.axes[k][1] - grid.axes[k][0] for k in others]))


def _streamlines(ax, x, y, rho, current, density):
    """Streamlines of ``current`` (width by speed), or ``J = 0`` when it is round-off."""
    speed = np.hypot(current[..., 0], current[..., 1])
    extent = max(x[-1] - x[0], y[-1] - y[0])
    if speed.max() <= 1e-9 * rho.max() * extent:              # detailed balance: J = 0 to round-off
        ax.text(0.02, 0.96, "J = 0 (equilibrium)", transform=ax.transAxes, color="white", va="top")
        return
    width = 0.3 + 2.0 * speed.T / max(speed.max(), 1e-300)
    ax.streamplot(x, y, current[..., 0].T, current[..., 1].T, color="white", linewidth=width,
                  density=density / 8, arrowsize=0.7)
