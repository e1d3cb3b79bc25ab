"""Diagrams over parameters: phase diagrams in (lr, B), sharpness against 2/lr,
escape time against 1/T, convergence orders."""

from __future__ import annotations

import numpy as np

from sdesim.plot.style import OKABE_ITO, legend


def phase_diagram(lrs, batch_sizes, fraction, ax=None, label="fraction in minimum A"):
    """Heat map of ``fraction[i, j]`` at ``(lrs[i], batch_sizes[j])`` with lines of constant ``lr / B``."""
    import matplotlib.pyplot as plt
    ax = ax or plt.gca()
    lrs, batch_sizes = np.asarray(lrs, float), np.asarray(batch_sizes, float)
    mesh = ax.pcolormesh(batch_sizes, lrs, np.asarray(fraction), shading="nearest", cmap="cividis",
                         vmin=0, vmax=1)
    plt.colorbar(mesh, ax=ax, label=label)
    B = np.geomspace(batch_sizes.min(), batch_sizes.max(), 50)
    for ratio in np.geomspace(lrs.min() / batch_sizes.max(), lrs.max() / batch_sizes.min(), 5):
        ax.plot(B, ratio * B, color="white", lw=0.6, ls=":")
    ax.set(xscale="log", yscale="log", xlabel="batch size B", ylabel="learning rate lr",
           ylim=(lrs.min(), lrs.max()), xlim=(batch_sizes.min(), batch_sizes.max()),
           title="dotted: constant temperature lr / 2B")
    return ax


def sharpness(t, top_eigenvalue, lr, ax=None, label="sharpness"):
    """Top Hessian eigenvalue against time with the linear-stability line ``2 / lr``."""
    import matplotlib.pyplot as plt
    ax = ax or plt.gca()
    ax.plot(t, top_eigenvalue, color=OKABE_ITO[0], label=label)
    ax.axhline(2.0 / lr, color="k", ls="--", lw=1, label=f"2 / lr = {2.0 / lr:g}")
    ax.set(xlabel="t = k lr", ylabel=r"$\lambda_{max}(\nabla^2 C)$")
    legend(ax)
    return ax


def escape_times(temperatures, measured, errors=None, theory: dict | None = None, ax=None):
    """Mean escape time against ``1/T`` (log scale) with error bars and theory curves."""
    import matplotlib.pyplot as plt
    ax = ax or plt.gca()
    inv = 1.0 / np.asarray(temperatures, float)
    ax.errorbar(inv, measured, yerr=errors, fmt="o", color=OKABE_ITO[1], label="simulated", capsize=2)
    for (label, values), style in zip((theory or {}).items(), ["k-", "k--", "k:"]):
        ax.plot(inv, values, style, lw=1, label=label)
    ax.set(yscale="log", xlabel="1 / T", ylabel="mean escape time")
    legend(ax)
    return ax


def convergence(steps, errors, slope=None, ax=None, label="error"):
    """Log-log error against step size, with the fitted slope in the legend."""
    import matplotlib.pyplot as plt
    ax = ax or plt.gca()
    steps, errors = np.asarray(steps, float), np.asarray(errors, float)
    if slope is None:
        slope = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    ax.loglog(steps, errors, "o-", label=f"{label} (slope {slope:.2f})")
    ax.set(xlabel="step size", ylabel="error")
    legend(ax)
    return ax
