r"""
# An ensemble on Mueller-Brown

Particles of the isotropic SGD diffusion at temperature `T = 12` (in the units of the
potential) all start in the shallowest minimum C of the Mueller-Brown potential.
Snapshots (2D histograms) and the occupation of the gradient-descent basins of attraction
over time: mass spills over the low saddle into B within $t \sim 0.02$, then over the
higher saddle into the deepest minimum A, where it stays: the order of the
Eyring-Kramers rates of the barriers.

**Formula.** Rates $\propto e^{-\Delta C / T}$: barriers 8.5 (C to B), 40.1 (C to A),
36 (B to C), 106 (A to C).

**Reproduces.** Müller & Brown, *Location of saddle points and minimum energy paths by a
constrained simplex optimization procedure* (Theor. Chim. Acta 1979).
"""

import os

import matplotlib.pyplot as plt
import numpy as np

import sdesim as sd

SCALE = float(os.environ.get("SDESIM_EXAMPLE_SCALE", "1"))  # < 1: smaller runs
BACKEND = "numba" if SCALE >= 0.5 else "numpy"
sd.plot.use()

# %%
# The catalog landscape knows its minima, saddles and plotting bounds. The SDE at
# temperature `T` is `SGDDiffusion(lr=2T, batch_size=1)`. The minima are stiff (curvatures
# up to about 3000): with `dt = 1e-4` Euler-Maruyama would warn (`StepSizeWarning`) that
# it inflates the spread by 15%; Heun's scheme does not.
land = sd.catalog.muller_brown()
loss = land.loss
minima = {m.name.split()[-1]: m for m in land.minima}
T, dt = 12.0, 1e-4
t_end = 1.5 if SCALE >= 0.5 else 0.1
n = max(100, int(2000 * SCALE))
sde = sd.SGDDiffusion(lr=2 * T, batch_size=1)
res = sd.simulate(loss, sde, minima["C"].location, n, t_end=t_end, dt=dt,
                  integrator="heun", record_every=max(1, round(t_end / dt / 600)),
                  backend=BACKEND, seed=7)

# %%
# Snapshots of the ensemble, then the fraction of particles in each basin (a particle is
# labelled by the minimum gradient descent takes it to).
times = [0.002, 0.01, 0.05, 0.3, t_end] if SCALE >= 0.5 else [0.0, 0.01, t_end]
panels = "abcde"[:len(times)]
fig, axd = plt.subplot_mosaic([list(panels), ["f"] * len(times)], figsize=(13, 5.6),
                              height_ratios=[1.25, 1], layout="constrained")
axes = [axd[k] for k in panels]
sd.plot.snapshots(loss, res, times, land.bounds, axes=axes, bins=70)
for ax in axes:
    for name, m in minima.items():
        ax.annotate(name, m.location, color="#56B4E9", fontsize=9, fontweight="bold",
                    ha="center", va="center")
basins = sd.analysis.Basins.from_landscape(land, method="gradient")
idx = np.unique(np.geomspace(1, len(res.t) - 1, 30).astype(int))
labels = basins(res.w[idx][:, :1000])
final = {}
for k, (name, m) in enumerate(minima.items()):
    fraction = (labels == k).mean(axis=1)
    final[name] = fraction[-1]
    axd["f"].plot(res.t[idx], fraction, "o-", ms=3,
                  label=f"minimum {name} (C = {m.value:.1f})")
axd["f"].set(xscale="log", xlabel="t", ylabel="fraction of particles",
             ylim=(-0.03, 1.03), title=f"occupation of the basins, T = {T:g}")
sd.plot.legend(axd["f"])

# %%
# The measured numbers.
print(f"{n} SDE particles at T = {T:g} from minimum C; fractions at t = {t_end:g}: "
      + ", ".join(f"{k}: {v:.2f}" for k, v in final.items()))
print("saddles: " + ", ".join(f"{s.name}: C = {s.value:.2f}" for s in land.saddles))
