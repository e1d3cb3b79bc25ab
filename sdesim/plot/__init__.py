"""Textbook figures: landscapes with trajectories of every lens, loss curves, densities."""

from sdesim.plot.landscape import contours, loss_curves, trajectories
from sdesim.plot.style import colour_for, use

__all__ = ["contours", "loss_curves", "trajectories", "colour_for", "use"]
