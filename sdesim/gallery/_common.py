"""Helpers shared by the gallery figures: style, sizes scaled for CI, saving with a caption."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

DPI = 120


def scaled(n, scale, minimum=1):
    """``n`` shrunk by ``scale`` (at least ``minimum``), as an int."""
    return max(int(minimum), int(round(n * scale)))


def backend(scale):
    """Numba (compiled, parallel) for the full figures; the NumPy reference for tiny CI runs,
    which would otherwise spend their time compiling kernels."""
    return "numba" if scale >= 0.5 else "numpy"


def figure(ncols=1, nrows=1, size=(4.2, 3.6), **kwargs):
    """A headless figure in the sdesim style; ``size`` is per panel."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sdesim import plot
    plot.use()
    kwargs.setdefault("layout", "constrained")
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False,
                             **kwargs)
    return fig, axes.ravel() if axes.size > 1 else axes[0, 0]


def save(fig, out_dir, name, caption) -> Path:
    """Write ``<name>.png`` (and ``<name>.txt`` holding the one-line caption) into ``out_dir``.

    First legends move where they cover no data (the figure widens for one that must go outside its
    axes) and overlapping tick labels are thinned.
    """
    import matplotlib.pyplot as plt

    from sdesim.plot.style import place_legend, tidy_ticks
    fig.draw_without_rendering()                            # the final layout
    for ax in fig.axes:
        leg = ax.get_legend()
        if leg is not None and place_legend(leg) == "outside":   # widen the figure, not squeeze the axes
            width = leg.get_window_extent().width / fig.dpi
            fig.set_size_inches(fig.get_size_inches() + (width + 0.1, 0))
    tidy_ticks(fig)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    (out / f"{name}.txt").write_text(caption.strip() + "\n")
    return path


class Timer:
    """Wall-clock seconds since creation."""

    def __init__(self):
        self.start = time.perf_counter()

    @property
    def seconds(self):
        return time.perf_counter() - self.start


def fmt(x, digits=3):
    """A number with ``digits`` significant digits."""
    return f"{float(x):.{digits}g}"


def rng(seed=0):
    return np.random.default_rng(seed)
