r"""Cyclic learning rates kick an ensemble out of a sharp minimum (Smith & Topin 2017).

Catalog ``sharp_flat``: equal-depth minima at ``x = -1`` (curvature 16) and ``x = +1``
(curvature 2). The ensemble starts in the sharp minimum; SGD with ``B = 8`` (unit per-sample
noise) runs with a constant ``lr = 0.12`` and with a triangular cyclic schedule between 0.04
and 0.2 of the same mean. At the peaks :math:`lr\, C'' > 2` in the sharp minimum: it is
linearly unstable (GD's stability limit :math:`2/lr`) while the flat one stays stable, so every
cycle ejects particles into the flat minimum. The SGD diffusion with the same schedule (the
same temperature :math:`lr(t)/2B`) has no such instability and stays put: the effect is
discrete.
"""

from __future__ import annotations

import numpy as np

from sdesim.gallery._common import backend, figure, fmt, save, scaled

NAME = "cyclic"
TITLE = "Cyclic learning rates kick an ensemble out of a sharp minimum"


def make(out_dir, scale=1.0):
    import sdesim as sd
    from sdesim import analysis
    from sdesim.dynamics.schedules import Cyclic

    land = sd.catalog.sharp_flat()
    loss = land.loss
    barrier = land.saddles[0].location[0] if land.saddles else land.maxima[0].location[0]
    sharp = float(land.minima[0].location[0])
    h_sharp = float(loss.hessian(np.array([[sharp]]))[0, 0, 0])
    lr_max, B, period, t_end = 0.2, 8, 4.0, 24.0
    cyc = Cyclic(period=period, low=0.2, high=1.0)
    n, be = scaled(2000, scale, 60), backend(scale)
    runs = {
        "SGD, constant lr = 0.12": sd.SGD(0.12, B),
        "SGD, cyclic lr in [0.04, 0.2]": sd.SGD(lr_max, B, schedule=cyc),
        "SDE, cyclic lr in [0.04, 0.2]": sd.SGDDiffusion(lr_max, B, schedule=cyc),
    }
    results = {}
    for i, (label, dyn) in enumerate(runs.items()):
        kw = {"dt": 0.005} if label.startswith("SDE") else {}
        results[label] = sd.simulate(loss, dyn, [sharp], n, t_end=t_end, backend=be, seed=20 + i,
                                     on_divergence="ignore", progress=False, **kw)
    colours = ["#000000", sd.plot.colour_for("SGD"), sd.plot.colour_for("SDE")]

    fig, (a, b, c) = figure(3, size=(3.6, 3.3))
    x = np.linspace(-1.6, 1.6, 400)
    a.plot(x, loss.value(x[:, None]), "k", lw=1.2)
    a.set(xlabel="x", ylabel="C(x)", ylim=(-0.1, 2.0), title=f"sharp_flat: C'' = {h_sharp:g} vs 2")
    ax2 = a.twinx()
    for (label, res), col in zip(results.items(), colours):
        if label.startswith("SGD, cyclic") or label.startswith("SGD, constant"):
            ax2.hist(res.final[:, 0], bins=np.linspace(-1.6, 1.6, 81), color=col, alpha=0.45,
                     label=label.split(",")[1].strip().split(" in")[0])
    ax2.set(yticks=[], ylabel="")
    ax2.spines["right"].set_visible(False)
    ax2.legend(loc="upper right", fontsize=7, title=f"SGD at t = {t_end:g}", title_fontsize=7)

    cyc_res = results["SGD, cyclic lr in [0.04, 0.2]"]
    for p in range(min(5, n)):
        b.plot(cyc_res.t, cyc_res.w[:, p, 0], lw=0.6)
    b.set(xlabel="t = k lr", ylabel="x", title="five cyclic-SGD particles", ylim=(-1.6, 1.6))
    lr_t = lr_max * cyc(cyc_res.t)
    b2 = b.twinx()
    b2.plot(cyc_res.t, lr_t * h_sharp, color="grey", lw=0.8, ls="--")
    b2.axhline(2.0, color="grey", lw=0.6, ls=":")
    b2.set_ylabel(r"$lr(t)\, C''_{sharp}$ (dashed; 2 dotted)", color="grey")

    frac = {}
    for (label, res), col in zip(results.items(), colours):
        w = res.w[..., 0]
        f = np.mean(np.where(np.isfinite(w), w > barrier, False), axis=1)
        frac[label] = f[-1]
        c.plot(res.t, f, color=col, label=label)
    c.set(xlabel="t = k lr", ylabel="fraction in the flat minimum", ylim=(-0.03, 1.03),
          title=f"B = {B}, T(t) = lr(t)/2B <= {lr_max / (2 * B):g}")
    c.legend(loc="upper left", fontsize=7)
    lost = float(np.mean(cyc_res.diverged))
    caption = (f"sharp_flat, {n} particles from the sharp minimum, B={B}: after {t_end / period:g} cycles "
               + ", ".join(f"{k}: {v:.2f}" for k, v in frac.items())
               + f" in the flat minimum (peak lr C''_sharp = {lr_max * h_sharp:.2f} > 2; {lost:.1%} of cyclic-SGD "
               "particles diverged).")
    return save(fig, out_dir, NAME, caption)
