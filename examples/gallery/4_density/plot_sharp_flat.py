r"""
# Sharp versus flat minima

Two minima of equal depth, curvature 16 at $x = -1$ and 2 at $x = +1$ (the catalog's
`sharp_flat`), and two SGD diffusions at temperature $T$: isotropic noise ($D = T$), and
noise that follows the Hessian of the basin the particle is in, $D(x) = T\,h(x)$, with
$h$ going smoothly from 16 to 2 across the barrier. Left: Fokker-Planck steady states at
`T = 0.05`. Right: mean first-passage times between the minima (Fokker-Planck). With
isotropic noise the flat minimum is preferred only by the Kramers prefactor
$\sqrt{16/2} \approx 2.8$; with Hessian noise its preference grows exponentially in
$1/T$.

**Formula.** Isotropic: $\tau \sim e^{\Delta C/T} / \sqrt{h_{min}}$; Hessian noise
$D = T h$: $\tau \sim e^{\Delta C / (T h_{min})}$.

**Reproduces.** Zhu, Wu, Yu, Wu & Ma, *The anisotropic noise in stochastic gradient
descent: its behavior of escaping from sharp minima and regularization effects* (ICML
2019); Xie, Sato & Sugiyama, *A diffusion theory for deep learning dynamics* (ICLR 2021).
"""

import os

import matplotlib.pyplot as plt
import numpy as np

import sdesim as sd

SCALE = float(os.environ.get("SDESIM_EXAMPLE_SCALE", "1"))  # < 1: smaller runs
sd.plot.use()

# %%
# The landscape, its curvatures, and a state-dependent diffusion $D(x) = T\,h(x)$ (a
# logistic of width 0.05 centred on the barrier).
land = sd.catalog.sharp_flat()
loss = land.loss
grid = sd.Grid([(-1.9, 1.9)], (max(200, int(1200 * SCALE)),))
x = grid.axes[0]
barrier = (land.saddles or land.maxima)[0].location[0]
h_sharp, h_flat = (loss.hessian(np.array([m.location]))[0, 0, 0]   # 16 and 2
                   for m in land.minima)


def fokker_planck(T, noise):
    if noise == "isotropic":
        return sd.FokkerPlanck(loss, temperature=T, grid=grid)

    def diffusion(W):
        w = np.asarray(W, dtype=float)[..., :1]
        h = h_sharp + (h_flat - h_sharp) / (1.0 + np.exp(-(w - barrier) / 0.05))
        return T * h[..., None]
    return sd.FokkerPlanck(loss, diffusion=diffusion, grid=grid)


# %%
# Mean first-passage times from each minimum to the other, on the grid
# (`FokkerPlanck.mean_first_passage_time` solves $L^\dagger \tau = -1$ on every cell).
inv_T = np.linspace(4.0, 40.0, 8 if SCALE >= 0.5 else 3)
to_flat, to_sharp = (lambda X: X[..., 0] >= 1.0), (lambda X: X[..., 0] <= -1.0)
tau = {}
for noise in ("isotropic", "Hessian"):
    for direction, start, target in (("sharp->flat", -1.0, to_flat),
                                     ("flat->sharp", 1.0, to_sharp)):
        times = []
        for T in 1 / inv_T:
            mfpt = fokker_planck(T, noise).mean_first_passage_time(target)
            times.append(np.interp(start, x, mfpt))
        tau[noise, direction] = np.array(times)

fig, (a, b) = plt.subplots(1, 2, figsize=(8.8, 3.7), layout="constrained")
colour = {"isotropic": "#0072B2", "Hessian": "#D55E00"}
a.plot(x, loss.value(x[:, None]), "k", lw=1)
a.set(xlabel="x", ylabel="C(x)", ylim=(-0.05, 1.5), title="steady states, T = 0.05")
a2 = a.twinx()
flat_mass = {}
for noise in ("isotropic", "Hessian"):
    rho = fokker_planck(0.05, noise).steady_state()
    flat_mass[noise] = rho[x > barrier].sum() * grid.cell_volume
    a2.plot(x, rho, color=colour[noise],
            label=f"{noise}: {flat_mass[noise]:.0%} flat")
a2.set(yticks=[], ylim=(0, None))
sd.plot.legend(a2, fontsize=7)
for (noise, direction), v in tau.items():
    b.semilogy(inv_T, v, "-" if direction == "sharp->flat" else "--",
               color=colour[noise], label=f"{noise}: {direction}")
b.set(xlabel="1 / T", ylabel="mean first-passage time",
      title="escape times (Fokker-Planck)")
sd.plot.legend(b, fontsize=7)

# %%
# The measured numbers.
for noise in ("isotropic", "Hessian"):
    r = tau[noise, "flat->sharp"] / tau[noise, "sharp->flat"]
    print(f"{noise} noise: tau(flat->sharp) / tau(sharp->flat) = {r[0]:.3g} .. "
          f"{r[-1]:.3g} over 1/T = {inv_T[0]:g} .. {inv_T[-1]:g}; the flat minimum "
          f"holds {flat_mass[noise]:.0%} of the steady state at T = 0.05")
print(f"Kramers prefactor sqrt(h_sharp / h_flat) = {np.sqrt(h_sharp / h_flat):.2f}")
