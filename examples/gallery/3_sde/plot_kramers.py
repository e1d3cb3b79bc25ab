r"""
# Escape time against 1/T

Mean first-passage time of overdamped Langevin dynamics (the SGD diffusion with
isotropic noise, $T = lr/2B$) from $x = -1$ to $x = +1$ in the double well
$C = (x^2 - 1)^2$, against $1/T$: particles (an exponential maximum-likelihood estimate
with censoring, 2 standard errors), the exact double quadrature, the Fokker-Planck mean
first-passage time on a grid, and Kramers' asymptotic formula, which approaches them as
$\Delta C / T$ grows.

**Formula.** Kramers: $\tau \approx \dfrac{2\pi}{\sqrt{C''(a)\,|C''(b)|}}\, e^{\Delta C / T}$;
exact: $\tau = \frac1T \int_{-1}^{1} dy\, e^{C(y)/T} \int_{-\infty}^{y} dz\, e^{-C(z)/T}$;
Fokker-Planck: $L^\dagger \tau = -1$ with $\tau = 0$ on the target.

**Reproduces.** Kramers, *Brownian motion in a field of force and the diffusion model of
chemical reactions* (Physica 1940); Hänggi, Talkner & Borkovec, *Reaction-rate theory:
fifty years after Kramers* (Rev. Mod. Phys. 1990).
"""

import os

import matplotlib.pyplot as plt
import numpy as np

import sdesim as sd

SCALE = float(os.environ.get("SDESIM_EXAMPLE_SCALE", "1"))  # < 1: smaller runs
BACKEND = "numba" if SCALE >= 0.5 else "numpy"
sd.plot.use()

# %%
# For each temperature: particles until they first reach `x = 1` (a streaming
# `FirstPassage` reducer, no trajectories kept), the exact quadrature, Kramers' formula and
# the Fokker-Planck mean first-passage time. The SDE at temperature `T` is
# `SGDDiffusion(lr=2T, batch_size=1)`.
land = sd.catalog.double_well_1d()
loss = land.loss
minimum, saddle = land.minima[0], (land.saddles or land.maxima)[0]
temps = 1.0 / (np.linspace(2.0, 5.0, 5) if SCALE >= 0.5 else np.array([2.0, 2.5]))
n = max(40, int(400 * SCALE))
grid = sd.Grid([(-2.2, 1.2)], (max(170, int(680 * SCALE)),))
measured, errors, kramers, exact, fokker_planck = [], [], [], [], []
for i, T in enumerate(temps):
    kr = sd.analysis.kramers_time(loss, minimum, saddle, T)
    passage = sd.analysis.FirstPassage(target=lambda W: W[..., 0] >= 1.0)
    sd.simulate(loss, sd.SGDDiffusion(lr=2 * T, batch_size=1), [-1.0], n,
                t_end=3 * kr, dt=0.005, reducers=[passage], keep="final",
                backend=BACKEND, seed=40 + i)
    out = passage.result()
    est = sd.analysis.mean_escape_time(out["times"], out["observed"])
    measured.append(est.mean)
    errors.append(2 * est.se)
    kramers.append(kr)
    exact.append(sd.analysis.mfpt_1d(loss, -1.0, 1.0, T))
    fp = sd.FokkerPlanck(loss, temperature=T, grid=grid)
    tau = fp.mean_first_passage_time(lambda X: X[..., 0] >= 1.0)     # on every cell
    fokker_planck.append(np.interp(-1.0, grid.axes[0], tau))

fig, ax = plt.subplots(figsize=(5.2, 4.0), layout="constrained")
theory = {"exact quadrature": exact, "Kramers": kramers,
          "Fokker-Planck MFPT": fokker_planck}
sd.plot.escape_times(temps, measured, errors, theory, ax=ax)
ax.set(title=r"$C = (x^2-1)^2$: escape from $x=-1$ to $x=+1$",
       xlabel=r"$1/T$  ($\Delta C = 1$)")

# %%
# The measured numbers.
for T, m, e, ex, kr, fp in zip(temps, measured, errors, exact, kramers,
                               fokker_planck):
    print(f"1/T = {1 / T:.2f}: particles {m:7.2f} +- {e:5.2f}, exact {ex:7.2f}, "
          f"Kramers / exact {kr / ex:.3f}, Fokker-Planck / exact {fp / ex:.4f}")
