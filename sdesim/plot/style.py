"""One figure style for sdesim: colour-blind-safe colours (Okabe & Ito), a distinct look for every
curve, legends that cover no data, vector-friendly output."""

from __future__ import annotations

import matplotlib
import numpy as np

OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]

LENS_COLOURS = {"GD": "#000000", "SGD": "#D55E00", "gradient flow": "#0072B2",
                "modified flow": "#009E73", "SDE": "#CC79A7"}
#: Colours for results beyond a lens type's first, most distinct first (yellow, faint on white, last).
EXTRA_COLOURS = ["#56B4E9", "#E69F00", "#009E73", "#CC79A7", "#0072B2", "#D55E00", "#000000", "#F0E442"]
LINESTYLES = ["-", "--", "-.", ":"]
#: Places tried, in order, for a legend that must not cover the data.
LEGEND_PLACES = ("upper right", "upper left", "lower left", "lower right", "center right", "center left",
                 "upper center", "lower center", "center")

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


def lens_type(label: str) -> str | None:
    """The lens type a label starts with (``"SGD (lr=0.1, B=2)"`` -> ``"SGD"``), or ``None``."""
    return next((key for key in LENS_COLOURS if label.startswith(key)), None)


def colour_for(label: str, index: int = 0) -> str:
    """Colour of a lens from its label (``"SGD (lr=...)"`` -> SGD's colour)."""
    kind = lens_type(label)
    return LENS_COLOURS[kind] if kind else OKABE_ITO[index % len(OKABE_ITO)]


def styles_for(labels) -> list[dict]:
    """A ``color`` and ``linestyle`` for each label, no two alike.

    The first result of a lens type gets the type's colour and a solid line; further
    results of the same type (``SGD B=2`` after ``SGD B=16``) get colours that no lens
    type present uses, with dashed, dash-dot or dotted lines; labels of no known type
    get those colours with solid lines. Colours repeat (with other line styles) only
    once every spare one is used.
    """
    kinds = [lens_type(label) for label in labels]
    taken = {LENS_COLOURS[k] for k in kinds if k}
    spare = [c for c in EXTRA_COLOURS if c not in taken]
    used, out = set(), []
    for i, kind in enumerate(kinds):
        if kind and kind not in kinds[:i]:
            pair = (LENS_COLOURS[kind], "-")
        else:
            order = LINESTYLES if kind is None else LINESTYLES[1:] + LINESTYLES[:1]
            fresh = [(c, order[0]) for c in spare if c not in {colour for colour, _ in used}]
            candidates = fresh + [(c, ls) for ls in order for c in spare]
            free = [p for p in candidates if p not in used]
            pair = free[0] if free else candidates[len(used) % len(candidates)]
        used.add(pair)
        out.append({"color": pair[0], "linestyle": pair[1]})
    return out


def use():
    """Apply the sdesim style to matplotlib's global settings."""
    matplotlib.rcParams.update(RC)


def legend(ax, **kwargs):
    """``ax.legend(**kwargs)``, moved where it covers no data (:func:`place_legend`)."""
    leg = ax.legend(**kwargs)
    if leg is not None:
        place_legend(leg)
    return leg


def place_legend(leg) -> str:
    """Move a legend to where it covers no data; returns the place.

    Data: lines, markers, bands, bars, error bars and texts of its axes and of the
    axes' twins (contours, meshes and images are background). The legend stays where
    it is if that is free (unless it is at ``"best"``, which matplotlib recomputes at
    every draw), else goes to the first free place of ``LEGEND_PLACES``, else outside
    the axes on the right. Call it once the limits are final.
    """
    ax = leg.axes
    twins = [a for a in ax.figure.axes if a.get_position().bounds == ax.get_position().bounds]
    for a in twins:
        a.get_xlim(), a.get_ylim()                            # apply pending autoscaling
        a.apply_aspect()
    shapes = [s for a in twins for s in _data_shapes(a)]
    best = leg._loc == 0                                      # "best" moves at every draw: fix a place
    for place in LEGEND_PLACES if best else (None,) + LEGEND_PLACES:
        if place is not None:
            leg.set_loc(place)
        if not _covers(leg.get_window_extent(), shapes):
            return place or "unchanged"
    right = max(a.get_tightbbox().x1 for a in twins if a is not ax) if len(twins) > 1 else ax.bbox.x1
    x = ax.transAxes.inverted().transform((right, 0))[0] + 0.02
    leg.set_loc("upper left")
    leg.set_bbox_to_anchor((x, 1.0), transform=ax.transAxes)
    return "outside"


def _data_shapes(ax):
    """``(kind, object)`` pairs in display coordinates: ``("points", (n, 2))``, ``("path", Path, filled)``,
    ``("box", Bbox)``."""
    from matplotlib.collections import LineCollection, PathCollection, PolyCollection
    from matplotlib.contour import ContourSet

    shapes = []
    for line in ax.lines:
        if not line.get_visible():
            continue
        xy = line.get_transform().transform(np.asarray(line.get_xydata(), float))
        shapes.append(("points", xy[np.isfinite(xy).all(axis=1)]))
        if line.get_linestyle() not in ("None", "", " ", "none"):
            for segment in _finite_runs(xy):
                shapes.append(("path", matplotlib.path.Path(segment), False))
    for coll in ax.collections:
        if isinstance(coll, ContourSet) or not coll.get_visible():
            continue
        if isinstance(coll, PathCollection):
            xy = coll.get_offset_transform().transform(np.asarray(coll.get_offsets(), float))
            shapes.append(("points", xy[np.isfinite(xy).all(axis=1)]))
        elif isinstance(coll, (PolyCollection, LineCollection)):
            filled = isinstance(coll, PolyCollection)
            shapes += [("path", coll.get_transform().transform_path(p), filled) for p in coll.get_paths()]
    for patch in ax.patches:
        if patch.get_visible():
            shapes.append(("path", patch.get_transform().transform_path(patch.get_path()), patch.get_fill()))
    shapes += [("box", t.get_window_extent()) for t in ax.texts if t.get_visible() and t.get_text()]
    return shapes


def _finite_runs(xy):
    """A line's pieces between its gaps (non-finite points), each of at least two points."""
    ok = np.isfinite(xy).all(axis=1)
    cuts = np.flatnonzero(np.diff(ok.astype(int))) + 1
    return [run for run, good in zip(np.split(xy, cuts), np.split(ok, cuts)) if good[0] and len(run) >= 2]


def _covers(box, shapes) -> bool:
    """Whether the display box ``box`` overlaps any of ``shapes``."""
    for shape in shapes:
        if shape[0] == "points":
            xy = shape[1]
            if np.any((xy[:, 0] >= box.x0) & (xy[:, 0] <= box.x1) & (xy[:, 1] >= box.y0) & (xy[:, 1] <= box.y1)):
                return True
        elif shape[0] == "path":
            if shape[1].intersects_bbox(box, filled=shape[2]):
                return True
        elif box.overlaps(shape[1]):
            return True
    return False


def tidy_ticks(fig):
    """Hide tick labels that would overlap their neighbours, on every axis of ``fig``.

    Major labels are kept first, then the minor labels that fit between them (a
    log axis spanning less than a decade keeps its minor labels, thinned). Call it
    once the figure is final, e.g. just before saving.
    """
    fig.draw_without_rendering()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            kept = []
            for labels in (_tick_labels(axis, axis.get_major_ticks()), _tick_labels(axis, axis.get_minor_ticks())):
                for label in labels:
                    box = label.get_window_extent()
                    if any(box.overlaps(k) for k in kept):
                        label.set_visible(False)
                    else:
                        kept.append(box)


def _tick_labels(axis, ticks):
    """The visible, non-empty labels of ``ticks`` inside the axis's view."""
    lo, hi = sorted(axis.get_view_interval())
    return [label for tick in ticks if lo <= tick.get_loc() <= hi
            for label in (tick.label1, tick.label2) if label.get_visible() and label.get_text()]
