"""One figure style for sdesim: colour-blind-safe colours (Okabe & Ito), vector-friendly output."""

from __future__ import annotations

import matplotlib

OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]

LENS_COLOURS = {"GD": "#000000", "SGD": "#D55E00", "gradient flow": "#0072B2",
                "modified flow": "#009E73", "SDE": "#CC79A7"}

RC = {
    "figure.dpi": 110,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": matplotlib.cycler(color=OKABE_ITO),
    "legend.frameon": False,
    "legend.fontsize": 8,
    "image.cmap": "viridis",
}


def colour_for(label: str, index: int = 0) -> str:
    """Colour of a lens from its label (``"SGD (lr=...)"`` -> SGD's colour)."""
    for key, colour in LENS_COLOURS.items():
        if label.startswith(key):
            return colour
    return OKABE_ITO[index % len(OKABE_ITO)]


def use():
    """Apply the sdesim style to matplotlib's global settings."""
    matplotlib.rcParams.update(RC)
