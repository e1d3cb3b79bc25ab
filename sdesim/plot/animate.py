"""An animation of an ensemble moving on a 2D landscape (GIF, or MP4 when ffmpeg is present)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sdesim.plot.landscape import contours
from sdesim.plot.style import colour_for


def ensemble(loss, results, bounds, path, fps=20, max_points=2000):
    """Write an animation of one or more ensembles; returns the path written."""
    import matplotlib.pyplot as plt
    from matplotlib import animation

    path = Path(path)
    fig, ax = plt.subplots(figsize=(5, 4.5))
    contours(loss, bounds, ax)
    clouds = [ax.scatter([], [], s=3, color=colour_for(r.label, i), label=r.label, alpha=0.6)
              for i, r in enumerate(results)]
    ax.legend(loc="upper right")
    title = ax.set_title("")
    frames = min(len(r.t) for r in results)

    def draw(i):
        for cloud, res in zip(clouds, results):
            cloud.set_offsets(res.w[i, :max_points, :2])
        title.set_text(f"t = {results[0].t[i]:.3g}")
        return clouds + [title]

    anim = animation.FuncAnimation(fig, draw, frames=frames, interval=1000 / fps, blit=True)
    if path.suffix == ".mp4" and animation.writers.is_available("ffmpeg"):
        anim.save(path, writer="ffmpeg", fps=fps)
    else:
        path = path.with_suffix(".gif")
        anim.save(path, writer=animation.PillowWriter(fps=fps))
    plt.close(fig)
    return path
