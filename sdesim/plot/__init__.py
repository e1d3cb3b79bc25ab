"""Textbook figures: landscapes with every lens, densities, stationary states, diagrams.

One style (:func:`use`: colour-blind-safe Okabe-Ito colours), headless-safe,
vector output through ``savefig(".pdf" | ".svg")``.
"""

from sdesim.plot import animate
from sdesim.plot.density import heatmap, snapshots
from sdesim.plot.diagrams import convergence, escape_times, phase_diagram, sharpness
from sdesim.plot.landscape import contours, loss_curves, trajectories
from sdesim.plot.stationary import against_gibbs, covariance_ellipses, ellipse
from sdesim.plot.style import colour_for, use

__all__ = ["animate", "heatmap", "snapshots", "convergence", "escape_times", "phase_diagram", "sharpness",
           "contours", "loss_curves", "trajectories", "against_gibbs", "covariance_ellipses", "ellipse",
           "colour_for", "use"]
