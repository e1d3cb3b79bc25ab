r"""Minimum-energy paths on Mueller-Brown by the climbing-image nudged elastic band.

Two climbing-image bands, A to C and C to B, relax onto the minimum-energy path; their
climbing images converge to the saddles, whose energies are the published reference values
(-40.66 for A-C, -72.25 for B-C; Mueller & Brown 1979). The straight line from A to B
(``sdesim.analysis.interpolate``) crosses a much higher barrier.
"""

from __future__ import annotations

import numpy as np

from sdesim.gallery._common import figure, save, scaled

NAME = "neb"
TITLE = "Nudged elastic band on Mueller-Brown"

REFERENCE = {"A-C": -40.66, "B-C": -72.25}


def _arc(R):
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(R, axis=0), axis=1))])
    return s


def make(out_dir, scale=1.0):
    import sdesim as sd
    from sdesim import analysis, plot

    land = sd.catalog.muller_brown()
    loss = land.loss
    mins = {m.name.split()[-1]: np.array(m.location) for m in land.minima}
    n_img = scaled(21, scale, 7)
    tol = 1e-4 if scale >= 0.5 else 1e-1
    bands = {key: analysis.nudged_elastic_band(loss, mins[key[0]], mins[key[-1]], n_images=n_img, tol=tol,
                                               max_steps=scaled(20_000, scale, 500))
             for key in ("A-C", "C-B")}
    alpha, line = analysis.interpolate(loss, mins["A"], mins["B"], n=201)

    fig, (a, b) = figure(2, size=(4.4, 3.9))
    bounds = [tuple(x) for x in land.bounds]
    plot.contours(loss, bounds, a)
    a.plot([mins["A"][0], mins["B"][0]], [mins["A"][1], mins["B"][1]], "--", color="#E69F00", lw=1.2,
           label="straight line A-B")
    for (key, band), col in zip(bands.items(), ["#0072B2", "#009E73"]):
        a.plot(*band.images.T, "o-", ms=3, color=col, lw=1.2, label=f"NEB {key}")
        a.plot(*band.saddle, "*", ms=12, color="#D55E00", mec="k", mew=0.5)
    for name, m in mins.items():
        a.annotate(name, m, color="w", fontsize=10, ha="right", va="bottom", fontweight="bold")
    a.legend(loc="lower left", fontsize=7)
    a.set_title("climbing-image NEB (stars: saddles)")

    L = np.linalg.norm(mins["B"] - mins["A"])
    b.plot(alpha * L, line, "--", color="#E69F00", label="straight line A-B")
    R = np.vstack([bands["A-C"].images, bands["C-B"].images[1:]])
    V = np.concatenate([bands["A-C"].values, bands["C-B"].values[1:]])
    b.plot(_arc(R), V, "o-", ms=3, color="#0072B2", label="minimum-energy path A-C-B")
    for key, ref in REFERENCE.items():
        b.axhline(ref, color="grey", lw=0.7, ls=":")
        b.text(0.02, ref + 3, f"saddle {key} (reference {ref})", fontsize=7, color="grey",
               transform=b.get_yaxis_transform())
    b.set(xlabel="arc length", ylabel="C", title="energy along the paths")
    b.legend(loc="upper right", fontsize=7)
    found = {"A-C": bands["A-C"].saddle_value, "B-C": bands["C-B"].saddle_value}
    caption = ("Mueller-Brown, climbing-image NEB with "
               f"{n_img} images: saddle energies {found['A-C']:.2f} (A-C, reference -40.66) and "
               f"{found['B-C']:.2f} (B-C, reference -72.25), bands converged: "
               f"{all(bd.converged for bd in bands.values())}; the straight line A-B peaks at {line.max():.1f}.")
    return save(fig, out_dir, NAME, caption)
