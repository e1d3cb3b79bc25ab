"""Textbook figures: landscapes with every lens, densities, stationary states, diagrams.

One style (:func:`use`: colour-blind-safe Okabe-Ito colours; :func:`styles_for`: a distinct
colour and line style for every curve; :func:`legend`: legends that cover no data;
:func:`tidy_ticks`: no overlapping tick labels),
headless-safe, vector output through ``savefig(".pdf" | ".svg")``. Losses of more than two
variables are drawn in a :class:`Plane`: two chosen variables (:func:`variables`) or the top
Hessian eigenvectors at a minimum (:func:`hessian_plane`).
"""

from sdesim.plot import animate
from sdesim.plot.density import heatmap, snapshots
from sdesim.plot.diagrams import convergence, escape_times, phase_diagram, sharpness
from sdesim.plot.landscape import contours, data_bounds, loss_curves, trajectories
from sdesim.plot.plane import Plane, hessian_plane, variables
from sdesim.plot.stationary import against_gibbs, covariance_ellipses, ellipse
from sdesim.plot.style import colour_for, legend, place_legend, styles_for, tidy_ticks, use

__all__ = ["Plane", "against_gibbs", "animate", "colour_for", "contours", "convergence",
           "covariance_ellipses", "data_bounds", "ellipse", "escape_times", "heatmap", "hessian_plane",
           "legend", "loss_curves", "phase_diagram", "place_legend", "sharpness", "snapshots", "styles_for",
           "tidy_ticks", "trajectories", "use", "variables"]
