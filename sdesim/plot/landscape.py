"""Landscapes with trajectories of every lens overlaid, and loss curves over time."""

from __future__ import annotations

import numpy as np

from sdesim.errors import ConfigError
from sdesim.plot.plane import resolve
from sdesim.plot.style import legend, styles_for


def data_bounds(points, pad=0.15, outliers=1e-3):
    """``[(x0, x1), (y0, y1)]`` around the finite points ``(..., 2)`` of each array of ``points``,
    padded by ``pad`` of the span; a fraction ``outliers`` of them on each side may fall outside."""
    xy = np.concatenate([np.asarray(p, float).reshape(-1, 2) for p in points])
    xy = xy[np.isfinite(xy).all(axis=1)]
    if not len(xy):
        return [(-1.0, 1.0), (-1.0, 1.0)]
    lo, hi = np.quantile(xy, [outliers, 1 - outliers], axis=0)
    margin = pad * (hi - lo) + 1e-3
    return [(lo[0] - margin[0], hi[0] + margin[0]), (lo[1] - margin[1], hi[1] + margin[1])]


def contours(loss, bounds, ax, n=200, levels=30, plane=None):
    """Filled contours of a loss over ``bounds = [(x0, x1), (y0, y1)]`` of a plane.

    ``plane``: see :func:`sdesim.plot.plane.resolve` (default: the two variables of a 2D
    loss); the axes are labelled with the plane's names.
    """
    plane = resolve(loss, plane)
    (x0, x1), (y0, y1) = bounds
    X, Y = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n))
    Z = loss.value(plane.lift(X, Y))
    lo, hi = np.percentile(Z, [0, 90])
    cs = ax.contourf(X, Y, np.minimum(Z, hi), levels=np.linspace(lo, hi, levels), cmap="Greys_r", alpha=0.8)
    ax.contour(X, Y, Z, levels=np.linspace(lo, hi, levels // 2), colors="white", linewidths=0.3)
    ax.set(xlabel=plane.names[0], ylabel=plane.names[1], xlim=bounds[0], ylim=bounds[1], aspect="equal")
    return cs


def trajectories(loss, results, bounds=None, ax=None, cloud=True, max_paths=3, plane=None):
    """Landscape contours with each result's paths (or ensemble mean path) and final cloud.

    Deterministic results (one particle, or identical particles) are drawn as a
    line; stochastic ones as a few sample paths, the ensemble mean and the final
    cloud of particles. Every result gets its own colour and line style.

    Parameters
    ----------
    bounds : ``[(x0, x1), (y0, y1)]``, optional
        In plane coordinates; default: around the recorded states (:func:`data_bounds`).
    plane : optional
        For losses of more than two variables: two variable names (the plane through
        the first result's final mean), ``"hessian"`` (the top two Hessian
        eigenvectors at the first result's final mean) or a
        :class:`sdesim.plot.plane.Plane`; see :func:`sdesim.plot.plane.resolve`.
    """
    import matplotlib.pyplot as plt
    ax = ax or plt.gca()
    plane = resolve(loss, plane, results)
    paths = [plane.coords(res.w) for res in results]
    contours(loss, bounds or data_bounds(paths), ax, plane=plane)
    for res, xy, style in zip(results, paths, styles_for([r.label for r in results])):
        spread = np.nanstd(res.w[-1], axis=0).max() if res.n_particles > 1 else 0.0
        if spread < 1e-12:
            ax.plot(xy[:, 0, 0], xy[:, 0, 1], lw=1.6, label=res.label, **style)
            continue
        for p in range(min(max_paths, res.n_particles)):
            ax.plot(xy[:, p, 0], xy[:, p, 1], color=style["color"], lw=0.5, alpha=0.5)
        if cloud:
            final = xy[-1][~res.diverged][:2000]
            ax.scatter(final[:, 0], final[:, 1], s=2, color=style["color"], alpha=0.3, lw=0)
        mean = plane.coords(res.mean())
        ax.plot(mean[:, 0], mean[:, 1], lw=1.6, label=f"{res.label} (mean)", **style)
    legend(ax, fontsize=7)
    return ax


def loss_curves(results, ax=None, offset=0.0, quantiles=(0.1, 0.9), log=None):
    """Median of ``loss - offset`` over the particles against ``t = k lr``, with a quantile band.

    The median and the band (between ``quantiles``) are robust to a few particles with
    huge losses, which would dominate a mean. Particles stopped at the divergence
    bound (a non-finite state or ``|w_i| > bound``, see ``simulate``) are left out
    from then on; the legend counts them. ``log``: a logarithmic loss axis (default:
    when the curves are positive and span more than three decades).
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    ax = ax or plt.gca()
    lo_q, hi_q = quantiles
    if not 0 <= lo_q < hi_q <= 1:
        raise ConfigError(f"quantiles must satisfy 0 <= lo < hi <= 1, got {quantiles}")
    shown, band = [], False
    for res, style in zip(results, styles_for([r.label for r in results])):
        median, lo, hi = _quantiles(res.loss - offset, (0.5, lo_q, hi_q))
        ax.plot(res.t, median, label=_curve_label(res), **style)
        shown.append(median)
        if res.n_particles > 1 and np.any(hi - lo > 0):
            ax.fill_between(res.t, lo, hi, color=style["color"], alpha=0.15, lw=0)
            shown += [lo, hi]
            band = True
    values = np.concatenate(shown) if shown else np.array([])
    values = values[np.isfinite(values)]
    if log or (log is None and len(values) and values.min() > 0 and values.max() > 1e3 * values.min()):
        ax.set_yscale("log")
    ylabel = "loss" if offset == 0 else f"loss - {offset:g}"
    ax.set(xlabel="t = k lr", ylabel=f"{ylabel} (median over particles)")
    handles, labels = ax.get_legend_handles_labels()
    if band:
        handles.append(Patch(color="grey", alpha=0.3, lw=0))
        labels.append(f"shaded: {lo_q:.0%}-{hi_q:.0%} of particles")
    legend(ax, handles=handles, labels=labels, title=_stopped_note(results))
    return ax


def _quantiles(values, qs):
    """Quantiles ``qs`` over the finite values of each row of ``values (T, N)``; NaN for empty rows."""
    out = np.full((len(qs), len(values)), np.nan)
    alive = np.isfinite(values).any(axis=1)
    if alive.any():
        out[:, alive] = np.nanquantile(values[alive], qs, axis=1)
    return out


def _stopped_note(results):
    """What happened to the particles stopped at the divergence bound (``None`` if none was)."""
    stopped = [r for r in results if r.diverged.any()]
    if not stopped:
        return None
    bounds = sorted({f"{r.metadata['bound']:g}" for r in stopped if r.metadata.get("bound") is not None})
    return f"stopped (|w_i| > {', '.join(bounds)}): left out" if bounds else "stopped particles: left out"


def _curve_label(res):
    """The result's label, with the number of particles stopped at the divergence bound."""
    stopped = int(res.diverged.sum())
    return f"{res.label}, {stopped} of {res.n_particles} stopped" if stopped else res.label
