"""An animation of an ensemble moving on a landscape (GIF, or MP4 when ffmpeg is present)."""

from __future__ import annotations

from pathlib import Path

from sdesim.plot.landscape import contours, data_bounds
from sdesim.plot.plane import resolve
from sdesim.plot.style import styles_for


def ensemble(loss, results, bounds, path, fps=20, max_points=2000, plane=None):
    """Write an animation of one or more ensembles; returns the path written.

    ``bounds`` (``None``: around the recorded states) and ``plane`` (for losses of more
    than two variables) as in :func:`sdesim.plot.trajectories`.
    """
    import matplotlib.pyplot as plt
    from matplotlib import animation

    path = Path(path)
    plane = resolve(loss, plane, results)
    paths = [plane.coords(r.w[:, :max_points]) for r in results]
    fig, ax = plt.subplots(figsize=(5, 4.5))
    contours(loss, bounds or data_bounds(paths), ax, plane=plane)
    clouds = [ax.scatter([], [], s=3, color=style["color"], label=r.label, alpha=0.6)
              for r, style in zip(results, styles_for([r.label for r in results]))]
    ax.legend(loc="upper right")
    title = ax.set_title("")
    frames = min(len(r.t) for r in results)

    def draw(i):
        for cloud, xy in zip(clouds, paths):
            cloud.set_offsets(xy[i])
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
