r"""
# Gibbs versus anisotropic noise

Fokker-Planck steady states of the SGD diffusion on a quadratic $C = \tfrac12 w^\top H w$,
$H = \mathrm{diag}(1, 4)$, with per-sample noise $S$ whose eigenvectors are rotated by 30
degrees ($HS \ne SH$), `lr = 0.1`, `B = 1`. Left: isotropic noise of the same total
variance, the Gibbs density with zero current. Right: $D = lr\,S/2B$, a tilted Gaussian
(dashed: the 2-sigma ellipse of the Lyapunov covariance) that carries a circulating
current (streamlines). The mean angular velocity is measured on the grid and on
particles (`sd.analysis.angular_velocity`).

**Formula.** $HP + PH = (lr/B)\,S$; $J = (-Hw + D P^{-1} w)\,\rho$;
$\Omega = E[w_1 \dot w_2 - w_2 \dot w_1] = (h_1 - h_2)\,P_{12}$.

**Reproduces.** Chaudhari & Soatto, *Stochastic gradient descent performs variational
inference, converges to limit cycles for deep networks* (ICLR 2018).
"""

import os

import matplotlib.pyplot as plt
import numpy as np

import sdesim as sd

SCALE = float(os.environ.get("SDESIM_EXAMPLE_SCALE", "1"))  # < 1: smaller runs
BACKEND = "numba" if SCALE >= 0.5 else "numpy"
sd.plot.use()

# %%
# The model, the Lyapunov covariance and the isotropic temperature of the same total noise.
lr, B = 0.1, 1
H = np.diag([1.0, 4.0])
th = np.pi / 6
R = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
S = R @ np.diag([4.0, 0.25]) @ R.T
qm = sd.QuadraticModel(hessian=H, noise_covariance=S)
P = sd.analysis.lyapunov_covariance(H, S, lr, B, kind="sde")
T = lr * np.trace(S) / 2 / (2 * B)
anisotropic = sd.SGDDiffusion(lr, B, noise="anisotropic")      # D = lr S / 2B

# %%
# A grid whose cell aspect ratio keeps the anisotropic scheme's weights positive
# ($h_2/h_1$ between $|D_{12}|/D_{11}$ and $D_{22}/|D_{12}|$), then both steady states
# and their probability currents.
half = 5.0 * np.sqrt(np.maximum(P.diagonal(), T / H.diagonal()))
m = max(81, int(181 * SCALE))
h1 = 2 * half[0] / m
h2 = h1 * np.sqrt(S[1, 1] / S[0, 0])
m2 = int(np.ceil(2 * half[1] / h2))
grid = sd.Grid([(-half[0], half[0]), (-m2 * h2 / 2, m2 * h2 / 2)], (m, m2))
fp_iso = sd.FokkerPlanck(qm, temperature=T, grid=grid)
fp_an = sd.FokkerPlanck.from_dynamics(qm, anisotropic, grid)
rho_iso, rho_an = fp_iso.steady_state(), fp_an.steady_state()
J_iso, J_an = fp_iso.current(rho_iso), fp_an.current(rho_an)


def circulation(J):
    """Mean angular velocity E[w1 J2 - w2 J1] of a current on the grid."""
    X = grid.centers
    return (X[..., 0] * J[..., 1] - X[..., 1] * J[..., 0]).sum() * grid.cell_volume


# %%
# Particles: the anisotropic SDE with exact Ornstein-Uhlenbeck steps, recorded every step.
n, dt = max(100, int(4000 * SCALE)), 0.01
res = sd.simulate(qm, anisotropic, np.zeros(2), n, t_end=max(2, 20 * SCALE), dt=dt,
                  integrator="exact_ou", backend=BACKEND, seed=3)
omega = sd.analysis.angular_velocity(res, center=np.zeros(2), burn_in=0.25)

fig, (a, b) = plt.subplots(2, 1, figsize=(6.4, 5.6), layout="constrained")
sd.plot.heatmap(grid, rho_iso, ax=a, loss=qm)
a.set_title(f"isotropic noise, T = {T:.3g}: Gibbs, J = 0")
sd.plot.heatmap(grid, rho_an, ax=b, current=J_an, loss=qm)
sd.plot.ellipse(b, np.zeros(2), P, 2.0, color="C1", lw=1.4, ls="--")
b.set_title(r"anisotropic $D = lr\,S/2B$: current $J$; dashed: 2-sigma of $P$")

# %%
# The measured numbers. Records `dt` apart measure the angular velocity of the discrete
# chain, $(e^{-h_2 dt} - e^{-h_1 dt})\,P_{12}/dt$.
omega_dt = (np.exp(-H[1, 1] * dt) - np.exp(-H[0, 0] * dt)) * P[0, 1] / dt
print(f"mean angular velocity: theory (h1 - h2) P12 = "
      f"{sd.analysis.angular_velocity_theory(H, P):.4f}, "
      f"Fokker-Planck {circulation(J_an):.4f} ({m}x{m2} grid)")
print(f"{n} particles: {omega.mean:.4f} +- {omega.se:.4f} "
      f"(theory for records {dt:g} apart: {omega_dt:.4f})")
print(f"isotropic noise: {circulation(J_iso):.1e}")
