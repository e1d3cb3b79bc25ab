r"""Stationary covariance ellipses: measured against the discrete and continuous Lyapunov equations.

A 2D quadratic with Hessian eigenvalues 0.5 and 3.5 (eigenvectors at 30 degrees) and
per-sample noise :math:`S = \mathrm{diag}(1, 0.3)` (``HS != SH``), ``lr = 0.4``, ``B = 2``, so
:math:`lr\,h_{max} = 1.4`. SGD's stationary covariance solves the discrete Lyapunov equation
:math:`P = A P A^T + lr^2 S / B`, :math:`A = I - lr H`; its SDE the continuous one
:math:`HP + PH = (lr/B) S`; the modified-drift SDE (second-order SME) lies in between.
"""

from __future__ import annotations

import numpy as np

from sdesim.gallery._common import backend, figure, save, scaled

NAME = "lyapunov"
TITLE = "Covariance ellipses: measured against discrete and continuous Lyapunov"


def make(out_dir, scale=1.0):
    import sdesim as sd
    from sdesim import analysis, plot

    th = np.pi / 6
    R = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    H = R @ np.diag([0.5, 3.5]) @ R.T
    S = np.diag([1.0, 0.3])
    lr, B = 0.4, 2
    qm = sd.QuadraticModel(hessian=H, noise_covariance=S)
    P = {k: analysis.lyapunov_covariance(H, S, lr, B, kind=k) for k in ("discrete", "sde")}
    n, be = scaled(2000, scale, 100), backend(scale)
    t_end = 40.0 if scale >= 0.5 else 8.0
    sgd = sd.simulate(qm, sd.SGD(lr, B), np.zeros(2), n, t_end=t_end, record_every=5, backend=be, seed=5,
                      progress=False)
    sde = sd.simulate(qm, sd.SGDDiffusion(lr, B, noise="anisotropic"), np.zeros(2), n, t_end=t_end, dt=0.05, record_every=5,
                      integrator="exact_ou", backend=be, seed=6, progress=False)
    fig, (a, b) = figure(2, size=(4.2, 4.0))
    preds = {"discrete Lyapunov": P["discrete"], "continuous Lyapunov (SDE)": P["sde"]}
    burn = 0.25 * t_end
    plot.covariance_ellipses(sgd, preds, ax=a, burn_in=burn)
    plot.covariance_ellipses(sde, {"continuous Lyapunov (SDE)": P["sde"], "discrete Lyapunov": P["discrete"]},
                             ax=b, burn_in=burn)
    lim = 2.6 * np.sqrt(P["discrete"].diagonal().max())
    for ax, title in ((a, f"SGD, lr = {lr:g}, B = {B}"), (b, "SGD diffusion (exact OU)")):
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), xlabel=r"$w_1$", ylabel=r"$w_2$", title=title)
        ax.legend(loc="upper left", fontsize=6.5)
    err = {}
    for name, res, ref in (("SGD", sgd, P["discrete"]), ("SDE", sde, P["sde"])):
        st = analysis.stationary_statistics(res, burn_in=0.25, batches=4)
        err[name] = (np.linalg.norm(st.covariance - ref) / np.linalg.norm(ref),
                     np.linalg.norm(st.covariance_se) / np.linalg.norm(ref))
    gap = np.linalg.norm(P["discrete"] - P["sde"]) / np.linalg.norm(P["sde"])
    caption = (f"H eigenvalues 0.5, 3.5 at 30 deg, S = diag(1, 0.3), lr = {lr:g}, B = {B}, {n} particles: "
               f"measured SGD covariance within {err['SGD'][0]:.1%} (se {err['SGD'][1]:.1%}) of the discrete "
               f"Lyapunov prediction, SDE within {err['SDE'][0]:.1%} (se {err['SDE'][1]:.1%}) of the continuous "
               f"one; the two predictions differ by {gap:.0%}.")
    return save(fig, out_dir, NAME, caption)
