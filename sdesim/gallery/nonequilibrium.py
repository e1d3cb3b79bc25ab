r"""Gibbs versus anisotropic noise: a non-equilibrium steady state that circulates (Chaudhari & Soatto 2018).

A quadratic :math:`C = \tfrac12 w^T H w` with :math:`H = \mathrm{diag}(1, 4)` and per-sample noise
covariance :math:`S` whose eigenvectors are rotated by 30 degrees (so :math:`HS \ne SH`),
``lr = 0.1``, ``B = 1``. Left: the SGD diffusion with isotropic noise at the same temperature
has the Gibbs steady state :math:`\rho \propto e^{-C/T}` and no current. Right: with :math:`D =
(lr/2B) S` the Fokker-Planck steady state is the Gaussian of the continuous Lyapunov equation
:math:`HP + PH = (lr/B) S`, tilted away from the level sets of :math:`C`, and carries a current
:math:`J = (-H w + D P^{-1} w)\rho` (streamlines) with mean angular velocity
:math:`(h_1 - h_2) P_{12}`, measured on the grid and on particles.
"""

from __future__ import annotations

import numpy as np

from sdesim.gallery._common import backend, figure, fmt, save, scaled

NAME = "nonequilibrium"
TITLE = "Gibbs versus anisotropic-noise steady states, with currents"


def _circulation(grid, J):
    X = grid.centers
    return float(((X[..., 0] * J[..., 1] - X[..., 1] * J[..., 0])).sum() * grid.cell_volume)


def make(out_dir, scale=1.0):
    import sdesim as sd
    from sdesim import analysis, plot

    lr, B = 0.1, 1
    H = np.diag([1.0, 4.0])
    th = np.pi / 6
    R = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    S = R @ np.diag([4.0, 0.25]) @ R.T
    qm = sd.QuadraticModel(hessian=H, noise_covariance=S)
    T = lr * np.trace(S) / 2 / (2 * B)                    # isotropic noise of the same total variance
    P = analysis.lyapunov_covariance(H, S, lr, B, kind="sde")
    half = 5.0 * np.sqrt(np.maximum(P.diagonal(), T / H.diagonal()))
    m = scaled(181, scale, 41)
    h1 = 2 * half[0] / m
    D = lr * S / (2 * B)                                  # h2/h1 inside [|D12|/D11, D22/|D12|]: positive weights
    ratio = np.sqrt(abs(D[0, 1]) / D[0, 0] * D[1, 1] / abs(D[0, 1]))
    m2 = int(np.ceil(2 * half[1] / (ratio * h1)))
    grid = sd.Grid([(-half[0], half[0]), (-m2 * ratio * h1 / 2, m2 * ratio * h1 / 2)], (m, m2))

    fp_iso = sd.FokkerPlanck(qm, temperature=T, grid=grid)
    fp_an = sd.FokkerPlanck.from_dynamics(qm, sd.SGDDiffusion(lr, B, noise="anisotropic"), grid)
    rho_iso, rho_an = fp_iso.steady_state(), fp_an.steady_state()
    J_iso, J_an = fp_iso.current(rho_iso), fp_an.current(rho_an)
    omega_theory = analysis.angular_velocity_theory(H, P)
    omega_fp = _circulation(grid, J_an)
    omega_iso = _circulation(grid, J_iso)

    n, dt = scaled(4000, scale, 100), 0.01
    # the estimator over records dt apart measures (exp(-h2 dt) - exp(-h1 dt)) P12 / dt
    omega_dt = (np.exp(-H[1, 1] * dt) - np.exp(-H[0, 0] * dt)) * P[0, 1] / dt
    res = sd.simulate(qm, sd.SGDDiffusion(lr, B, noise="anisotropic"), np.zeros(2), n,
                      t_end=scaled(20, scale, 2), dt=dt, record_every=1, backend=backend(scale), seed=3,
                      integrator="exact_ou")
    omega_p = analysis.angular_velocity(res, center=np.zeros(2), burn_in=0.25)

    fig, (a, b) = figure(1, 2, size=(6.4, 2.7))
    plot.heatmap(grid, rho_iso, ax=a, loss=qm)
    a.set_title(f"isotropic noise, T = {fmt(T)}: Gibbs, J = 0")
    plot.heatmap(grid, rho_an, ax=b, current=J_an, loss=qm)
    plot.ellipse(b, np.zeros(2), P, 2.0, color="C1", lw=1.4, ls="--")
    b.set_title(rf"anisotropic $D = lr\,S/2B$: current $J$ (streamlines), $\Omega$ = {omega_fp:.3f}; "
                "dashed: 2-sigma of Lyapunov $P$")
    for ax in (a, b):
        ax.set(xlabel=r"$w_1$", ylabel=r"$w_2$")
    caption = (f"H = diag(1, 4), S rotated 30 deg, lr={lr:g}, B={B}: mean angular velocity of the anisotropic "
               f"steady state {omega_fp:.4f} (Fokker-Planck, {m}x{m2} grid), {omega_p.mean:.4f} +- {omega_p.se:.4f} "
               f"({n} particles, records {dt:g} apart: theory {omega_dt:.4f}), theory (h1 - h2) P12 = "
               f"{omega_theory:.4f}; isotropic noise: {omega_iso:.1e}.")
    return save(fig, out_dir, NAME, caption)
