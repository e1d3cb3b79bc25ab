r"""Discrete SGD against its SDE: the stationary variance as ``lr h`` grows.

On a 1D quadratic :math:`C = h w^2/2` with per-sample gradient variance ``s`` (``h = s = 1``,
``B = 1``) SGD's stationary variance solves the discrete Lyapunov equation,
:math:`P = lr\, s / (B h (2 - lr h))`, while the SGD diffusion gives :math:`lr\, s / (2 B h)`: the
ratio is :math:`2 / (2 - lr h)`, close to one only for :math:`lr h \ll 1`, and SGD diverges at
:math:`lr h = 2` (linear stability). Points: measured stationary variances of SGD and of the
SDE (exact Ornstein-Uhlenbeck steps) with 2-sigma error bars.
"""

from __future__ import annotations

import numpy as np

from sdesim.gallery._common import backend, figure, fmt, save, scaled

NAME = "variance_ratio"
TITLE = "Discrete SGD versus the SDE: stationary variance as lr h grows"


def make(out_dir, scale=1.0):
    import sdesim as sd
    from sdesim import analysis

    h, s, B = 1.0, 1.0, 1
    qm = sd.QuadraticModel(hessian=[[h]], noise_covariance=[[s]])
    lrs = np.array([0.05, 0.1, 0.2, 0.4, 0.7, 1.0, 1.3, 1.5, 1.7, 1.8, 1.9])
    if scale < 1:
        lrs = lrs[:: max(1, int(round(1 / scale)))][: scaled(len(lrs), scale, 3)]
    n, be = scaled(4000, scale, 100), backend(scale)
    rows = []
    finals = {}
    for i, lr in enumerate(lrs):
        sgd = sd.simulate(qm, sd.SGD(lr, B), [0.0], n, steps=scaled(400, scale, 60), backend=be, seed=10 + i,
                          progress=False)
        sde = sd.simulate(qm, sd.SGDDiffusion(lr, B), [0.0], n, t_end=scaled(10, scale, 3), dt=0.05,
                          integrator="exact_ou", backend=be, seed=100 + i, progress=False)
        st = [analysis.stationary_statistics(r, burn_in=0.5, batches=4) for r in (sgd, sde)]
        sde_theory = analysis.stationary_variance_1d(h, s, lr, B, kind="sde")
        rows.append([lr * h] + [x for a in st for x in (a.covariance[0, 0] / sde_theory,
                                                        a.covariance_se[0, 0] / sde_theory)])
        finals[lr] = (sgd.final[:, 0], sde.final[:, 0])
    rows = np.array(rows)

    fig, (a, b) = figure(2, size=(4.3, 3.5))
    x = np.linspace(0, 1.97, 300)
    a.plot(x, 2 / (2 - x), "k-", lw=1, label=r"discrete Lyapunov: $2/(2 - lr\,h)$")
    a.axhline(1, color="k", ls=":", lw=1, label="SDE (continuous Lyapunov)")
    a.errorbar(rows[:, 0], rows[:, 1], 2 * rows[:, 2], fmt="o", ms=4, color=sd.plot.colour_for("SGD"),
               label=f"SGD, {n} particles", capsize=2)
    a.errorbar(rows[:, 0], rows[:, 3], 2 * rows[:, 4], fmt="s", ms=3.5, mfc="none",
               color=sd.plot.colour_for("SDE"), label="SGD diffusion (exact OU)", capsize=2)
    a.axvline(2, color="grey", lw=0.8, ls="--")
    a.text(1.96, 1.5, "GD unstable\nlr h > 2", ha="right", va="bottom", fontsize=7, color="grey")
    a.set(yscale="log", xlabel=r"$lr\, h$", ylabel="stationary variance / SDE prediction", xlim=(0, 2.05),
          title="variance ratio SGD / SDE")
    a.legend(loc="upper left", fontsize=7)

    lr = min(lrs, key=lambda v: abs(v - 1.5))
    w_sgd, w_sde = finals[lr]
    edges = np.linspace(-4, 4, 61) * np.sqrt(lr * s / (B * h * (2 - lr * h)))
    b.hist(w_sgd, edges, density=True, histtype="step", color=sd.plot.colour_for("SGD"), label="SGD")
    b.hist(w_sde, edges, density=True, histtype="step", color=sd.plot.colour_for("SDE"), label="SDE")
    z = np.linspace(edges[0], edges[-1], 300)
    for kind, ls in (("discrete", "-"), ("sde", ":")):
        v = analysis.stationary_variance_1d(h, s, lr, B, kind=kind)
        b.plot(z, np.exp(-z * z / (2 * v)) / np.sqrt(2 * np.pi * v), "k", ls=ls, lw=1,
               label=f"N(0, {kind} Lyapunov = {v:.3g})")
    b.set(xlabel="w", ylabel="density", title=f"final ensembles at lr h = {lr * h:g}")
    b.legend(loc="upper left", fontsize=7)
    k = int(np.argmin(np.abs(rows[:, 0] - 1.9)))
    caption = (f"1D quadratic, h = s = 1, B = 1, {n} particles: at lr h = {rows[k, 0]:g} SGD's variance is "
               f"{rows[k, 1]:.2f} +- {2 * rows[k, 2]:.2f} (2 se) times the SDE's (theory 2/(2 - lr h) = "
               f"{2 / (2 - rows[k, 0]):.2f}); the SDE stays at {fmt(rows[k, 3], 3)}; at lr h = {rows[0, 0]:g} "
               f"the ratio is {rows[0, 1]:.3f} +- {2 * rows[0, 2]:.3f} (theory {2 / (2 - rows[0, 0]):.3f}).")
    return save(fig, out_dir, NAME, caption)
