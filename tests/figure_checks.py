"""Image-free checks of the plotting contract, shared by the plot and gallery tests: what a
reader would see (overlapping tick labels, a legend over the data) measured on the artists."""

import numpy as np


def _renderer(fig):
    """An Agg renderer of the laid-out figure (a closed figure gets a fresh canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    if not hasattr(fig.canvas, "get_renderer"):
        FigureCanvasAgg(fig)
    fig.draw_without_rendering()
    return fig.canvas.get_renderer()


def legend_hits(ax, per_segment=20) -> int:
    """Data points of ``ax`` and its twins (line vertices and points along every segment, markers)
    inside its legend's box."""
    leg = ax.get_legend()
    box = leg.get_window_extent(_renderer(ax.figure))
    hits = 0
    for a in ax.figure.axes:
        if a.get_position().bounds != ax.get_position().bounds:
            continue
        clouds = [c.get_offset_transform().transform(c.get_offsets()) for c in a.collections
                  if hasattr(c, "get_offsets") and type(c).__name__ == "PathCollection"]
        for line in a.lines:
            xy = line.get_transform().transform(np.asarray(line.get_xydata(), float))
            if line.get_linestyle() not in ("None", ""):
                s = np.linspace(0, 1, per_segment)[:, None, None]
                xy = np.concatenate([xy, (xy[:-1] + s * (xy[1:] - xy[:-1])).reshape(-1, 2)])
            clouds.append(xy)
        for xy in clouds:
            xy = xy[np.isfinite(xy).all(axis=1)]
            hits += int(np.sum((xy[:, 0] > box.x0 + 1) & (xy[:, 0] < box.x1 - 1)
                               & (xy[:, 1] > box.y0 + 1) & (xy[:, 1] < box.y1 - 1)))
    return hits


def overlapping_tick_labels(fig) -> list:
    """Pairs of visible tick labels of one axis whose boxes overlap."""
    renderer = _renderer(fig)
    pairs = []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            labels = [t.label1 for t in axis.get_major_ticks() + axis.get_minor_ticks()
                      if lo <= t.get_loc() <= hi and t.label1.get_visible() and t.label1.get_text()]
            boxes = [(t.get_text(), t.get_window_extent(renderer).shrunk(0.98, 0.98)) for t in labels]
            pairs += [(a, b) for i, (a, p) in enumerate(boxes) for b, q in boxes[i + 1:] if p.overlaps(q)]
    return pairs
