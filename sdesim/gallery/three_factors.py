r"""Three factors: the temperature ``lr / 2B`` decides where SGD ends up (Jastrzebski et al. 2017).

Tilted double well :math:`C = (x^2-1)^2 + x/4` (catalog ``tilted_double_well_1d``); every run
starts in the shallow right minimum and SGD (per-sample gradient noise of variance ``s = 16``,
so :math:`T = s\, lr / 2B`) runs to ``t = 20``. Left: the fraction that ended in the deep left
minimum over ``(lr, B)``; right: the same fractions against ``T`` collapse onto one curve, the
Fokker-Planck prediction of the SGD diffusion at that temperature.
"""

from __future__ import annotations

import numpy as np

from sdesim.gallery._common import backend, figure, fmt, save, scaled

NAME = "three_factors"
TITLE = "Temperature lr/2B decides where SGD ends up"

S_NOISE = 16.0


def make(out_dir, scale=1.0):
    import sdesim as sd
    from sdesim import analysis, plot

    land = sd.catalog.tilted_double_well_1d(0.25)
    loss = land.loss
    left, right = (m.location[0] for m in land.minima)
    barrier = land.saddles[0].location[0] if land.saddles else land.maxima[0].location[0]
    basins = analysis.Basins.from_landscape(land, method="gradient")
    lrs = np.geomspace(0.01, 0.08, scaled(6, scale, 2))
    Bs = np.array([1, 2, 4, 8, 16, 32, 64][: scaled(7, scale, 2)])
    n, t_end = scaled(1000, scale, 40), 20.0
    pd = analysis.phase_diagram(
        loss, basins, [(lr, b) for lr in lrs for b in Bs], w0=[right], n_particles=n, t_end=t_end,
        dynamic=lambda lr, b: sd.SGD(lr, b, noise_covariance=[[S_NOISE]]), backend=backend(scale), seed=0)
    k_left = int(np.argmin(basins.centers[:, 0]))
    frac = pd.fractions[:, k_left].reshape(len(lrs), len(Bs))
    T = S_NOISE * pd.temperature

    # the density lens: Fokker-Planck occupation of the left basin at t_end, from the right minimum
    grid = sd.Grid([(-2.2, 2.2)], (scaled(440, scale, 120),))
    T_fp = np.geomspace(max(T.min(), 0.02), T.max(), scaled(24, scale, 4))
    occ = []
    for temp in T_fp:
        fp = sd.FokkerPlanck(loss, temperature=float(temp), grid=grid)
        sigma2 = max(temp / 7.0, (2 * grid.spacing[0]) ** 2)
        rho0 = grid.gaussian([right], [[sigma2]])
        res = fp.evolve(rho0, t_end=t_end, dt=t_end / scaled(400, scale, 40))
        x = grid.axes[0]
        occ.append(float(res.rho[-1][x < barrier].sum() * grid.cell_volume))
    occ = np.array(occ)

    fig, (a, b) = figure(2, size=(4.4, 3.6))
    plot.phase_diagram(lrs, Bs, frac, ax=a, label="fraction in the deep (left) minimum")
    a.set_title(f"SGD from the shallow minimum, t = {t_end:g}")
    lrh = lrs[:, None] * np.ones(len(Bs))
    sc = b.scatter(T, pd.fractions[:, k_left], c=np.log10(lrh.ravel() * 7.2), cmap="cividis", s=14,
                   zorder=3, label="SGD, every (lr, B)")
    fig.colorbar(sc, ax=b, label=r"$\log_{10}(lr\, C''_{min})$")
    b.plot(T_fp, occ, "k-", lw=1.2, label="Fokker-Planck at T")
    b.set(xscale="log", xlabel=r"temperature $T = s\, lr / 2B$", ylabel="fraction in the deep minimum",
          title="the fractions collapse onto T", ylim=(-0.03, 1.03))
    b.legend(loc="upper left")
    fp_at = np.interp(np.log(T), np.log(T_fp), occ, left=0.0)
    dev = np.abs(pd.fractions[:, k_left] - fp_at)[fp_at > 0.02]
    caption = (f"tilted double well, {len(lrs)}x{len(Bs)} (lr, B) settings x {n} SGD runs to t={t_end:g}: the "
               f"fraction escaped to the deep minimum rises from {fmt(frac.min(), 2)} to {fmt(frac.max(), 2)} "
               f"and depends on lr and B only through T = s lr/2B (|SGD - Fokker-Planck| "
               f"{fmt(dev.mean(), 2)} on average, {fmt(dev.max(), 2)} at most, where the FP fraction > 0.02; "
               f"lr C''_min <= {fmt(lrs.max() * 7.2, 2)}).")
    return save(fig, out_dir, NAME, caption)
