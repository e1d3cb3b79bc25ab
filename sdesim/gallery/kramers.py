r"""Escape from a minimum: mean first-passage time against ``1/T``, with Kramers and the exact quadrature.

Overdamped Langevin (the SGD diffusion with isotropic noise, ``T = lr/2B``) in the double
well :math:`C = (x^2-1)^2`, from the left minimum to the right one. Kramers:
:math:`\tau \approx 2\pi / \sqrt{C''(a)|C''(b)|}\; e^{\Delta C / T}`; the exact mean
first-passage time is the double quadrature
:math:`\tau = \frac1T \int_{-1}^{1} dy\, e^{C(y)/T} \int_{-\infty}^{y} dz\, e^{-C(z)/T}`; and the
Fokker-Planck lens solves :math:`L^\dagger \tau = -1` on a grid. Points: particles (exponential
maximum-likelihood estimate with censoring, 2 standard errors).
"""

from __future__ import annotations

import numpy as np

from sdesim.gallery._common import backend, figure, save, scaled

NAME = "kramers"
TITLE = "Escape time against 1/T: particles, Kramers, exact quadrature, Fokker-Planck"


def make(out_dir, scale=1.0):
    import sdesim as sd
    from sdesim import analysis, plot

    land = sd.catalog.double_well_1d()
    loss = land.loss
    a, b = land.minima[0], land.saddles[0] if land.saddles else land.maxima[0]
    temps = 1.0 / np.linspace(2.0, 5.0, scaled(7, scale, 3))
    n, be = scaled(600, scale, 40), backend(scale)
    grid = sd.Grid([(-2.2, 1.2)], (scaled(680, scale, 170),))
    measured, errors, kramers, exact, fpt = [], [], [], [], []
    for i, T in enumerate(temps):
        kr = analysis.kramers_time(loss, a, b, T)
        t_end = min(3.0 * kr, scaled(300, scale, 30))
        fp = analysis.FirstPassage(target=lambda W: W[..., 0] >= 1.0)
        sd.simulate(loss, sd.SGDDiffusion(lr=2 * T, batch_size=1), [-1.0], n, t_end=t_end, dt=0.005,
                    record_every=1, reducers=[fp], keep="final", backend=be, seed=40 + i, progress=False)
        out = fp.result()
        est = analysis.mean_escape_time(out["times"], out["observed"])
        measured.append(est.mean)
        errors.append(2 * est.se)
        kramers.append(kr)
        exact.append(analysis.mfpt_1d(loss, -1.0, 1.0, T))
        fpe = sd.FokkerPlanck(loss, temperature=T, grid=grid)
        tau = fpe.mean_first_passage_time(lambda X: X[..., 0] >= 1.0)
        fpt.append(float(np.interp(-1.0, grid.axes[0], tau)))
    fig, ax = figure(1, size=(4.8, 3.8))
    plot.escape_times(temps, measured, errors,
                      {"exact quadrature": exact, "Kramers": kramers, "Fokker-Planck MFPT": fpt}, ax=ax)
    ax.set(title=r"$C = (x^2-1)^2$: escape from $x=-1$ to $x=+1$")
    ax.set_xlabel(r"$1/T$  ($\Delta C = 1$)")
    ratio = np.array(measured) / np.array(exact)
    z = np.abs(np.array(measured) - np.array(exact)) / (np.array(errors) / 2)
    caption = (f"double_well_1d, {n} particles per T (dt = 0.005): measured/exact MFPT {ratio.min():.2f}..{ratio.max():.2f}, "
               f"within {z.max():.1f} standard errors, over 1/T = 2..5 (tau = {measured[0]:.3g} .. {measured[-1]:.3g}); Kramers/exact = "
               f"{kramers[0] / exact[0]:.2f} at 1/T = 2 and {kramers[-1] / exact[-1]:.2f} at 1/T = 5; "
               f"grid MFPT/exact = {fpt[-1] / exact[-1]:.3f}.")
    return save(fig, out_dir, NAME, caption)
