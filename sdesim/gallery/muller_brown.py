r"""An ensemble on the Mueller-Brown potential: snapshots over time and basin occupations.

The SGD diffusion with isotropic noise at temperature ``T = 12`` (``lr = 24``, ``B = 1`` in
the units of the potential) starts every particle in the shallowest minimum C. Mass first
spills over the low saddle into minimum B, then, over the higher saddle A-C, into the
deepest minimum A, where it stays: the order of the Eyring-Kramers rates
:math:`\propto e^{-\Delta C/T}` of each barrier. Basins are gradient-descent basins of attraction.
"""

from __future__ import annotations

import numpy as np

from sdesim.gallery._common import backend, save, scaled

NAME = "muller_brown"
TITLE = "Ensemble snapshots on the Mueller-Brown potential"


def make(out_dir, scale=1.0):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import sdesim as sd
    from sdesim import analysis, plot

    plot.use()
    land = sd.catalog.muller_brown()
    loss = land.loss
    mins = {m.name.split()[-1]: m for m in land.minima}
    T = 12.0
    n, be = scaled(4000, scale, 100), backend(scale)
    t_end = 1.5 if scale >= 0.5 else 0.1
    dt = 1e-4
    res = sd.simulate(loss, sd.SGDDiffusion(lr=2 * T, batch_size=1), mins["C"].location, n, t_end=t_end, dt=dt,
                      record_every=max(1, int(round(t_end / dt / 600))), backend=be, seed=7, progress=False)
    bounds = [tuple(b) for b in land.bounds]
    fig = plt.figure(figsize=(13, 5.6), layout="constrained")
    axd = fig.subplot_mosaic([["a", "b", "c", "d", "e"], ["f", "f", "f", "f", "f"]], height_ratios=[1.25, 1])
    times = [0.002, 0.01, 0.05, 0.3, t_end] if scale >= 0.5 else [0.0, 0.01, t_end]
    axes = [axd[k] for k in "abcde"][: len(times)]
    plot.snapshots(loss, res, times, bounds, axes=axes, bins=70)
    for ax in axes:
        for name, m in mins.items():
            ax.annotate(name, m.location, color="#56B4E9", fontsize=9, ha="center", va="center",
                        fontweight="bold")
    basins = analysis.Basins.from_landscape(land, method="gradient")
    idx = np.unique(np.geomspace(1, len(res.t) - 1, scaled(30, scale, 5)).astype(int))
    sub = res.w[idx][:, : scaled(1000, scale, 50)]
    labels = basins(sub)
    ax = axd["f"]
    names = [m.name.split()[-1] for m in land.minima]
    final = {}
    for k, name in enumerate(names):
        frac = (labels == k).mean(axis=1)
        final[name] = frac[-1]
        ax.plot(res.t[idx], frac, "o-", ms=3, label=f"minimum {name} (C = {land.minima[k].value:.1f})")
    saddles = ", ".join(f"{s.name.split()[-1]}: {s.value:.1f}" for s in land.saddles)
    ax.set(xscale="log", xlabel="t", ylabel="fraction of particles", ylim=(-0.03, 1.03),
           title=f"occupation of the gradient-descent basins, T = {T:g} (saddles {saddles})")
    ax.legend(loc="upper right")
    caption = (f"Mueller-Brown, {n} SDE particles at T = {T:g} from minimum C: at t = {t_end:g} the fractions in "
               + ", ".join(f"{k}: {v:.2f}" for k, v in final.items())
               + " (barriers from C: 8.5 to B, 40.1 to A; from A: 106).")
    return save(fig, out_dir, NAME, caption)
