r"""
# Cyclic learning rates

An ensemble in the sharp minimum of the catalog's `sharp_flat` (equal-depth minima of
curvature 16 at $x = -1$ and 2 at $x = +1$), minibatch SGD with `B = 8`. With a constant
`lr = 0.12` ($lr\,C'' = 1.92 < 2$) SGD stays; with a triangular cyclic schedule between
0.04 and 0.2 of the same mean, each peak ($lr\,C'' = 3.2 > 2$) makes the sharp minimum
linearly unstable and ejects a share of the particles into the flat one, which stays
stable. The SGD diffusion with the same schedule (the same temperature $lr(t)/2B$) stays
put: the kick is a discrete-time effect.

**Formula.** Triangular schedule $s(t) = low + (high - low)(1 - |2\{t/P\} - 1|)$; GD's
stability limit $lr\,\lambda_{max} < 2$.

**Reproduces.** Smith, *Cyclical Learning Rates for Training Neural Networks* (WACV
2017); Smith & Topin, *Super-Convergence* (2017); Huang et al., *Snapshot Ensembles*
(ICLR 2017).
"""

import os

import matplotlib.pyplot as plt
import numpy as np

import sdesim as sd

SCALE = float(os.environ.get("SDESIM_EXAMPLE_SCALE", "1"))  # < 1: smaller runs
BACKEND = "numba" if SCALE >= 0.5 else "numpy"
sd.plot.use()

# %%
# The landscape, the schedule (a factor of the peak `lr`: 0.2 x [0.2, 1]) and three runs.
land = sd.catalog.sharp_flat()
loss = land.loss
barrier = (land.saddles or land.maxima)[0].location[0]
sharp = land.minima[0].location[0]
h_sharp = loss.hessian(np.array([[sharp]]))[0, 0, 0]
B, period, t_end = 8, 4.0, 24.0 if SCALE >= 0.5 else 8.0
cyclic = sd.schedules.Cyclic(period=period, low=0.2, high=1.0)
runs = {
    "SGD, constant lr = 0.12": sd.SGD(0.12, B),
    "SGD, cyclic lr in [0.04, 0.2]": sd.SGD(0.2, B, schedule=cyclic),
    "SDE, cyclic lr in [0.04, 0.2]": sd.SGDDiffusion(0.2, B, schedule=cyclic),
}
n = max(60, int(2000 * SCALE))
results = {}
for i, (label, dyn) in enumerate(runs.items()):
    dt = 0.005 if dyn.continuous else None                   # the SDE's step
    results[label] = sd.simulate(loss, dyn, [sharp], n, t_end=t_end, dt=dt,
                                 on_divergence="ignore", backend=BACKEND,
                                 seed=20 + i)

# %%
# Left: five cyclic-SGD particles, with $lr(t)\,C''_{sharp}$ against the limit 2. Right:
# the fraction of each ensemble in the flat minimum.
fig, (a, b) = plt.subplots(1, 2, figsize=(8.8, 3.5), layout="constrained")
cyc = results["SGD, cyclic lr in [0.04, 0.2]"]
a.plot(cyc.t, cyc.w[:, :5, 0], lw=0.6)
a.set(xlabel="t = k lr", ylabel="x", ylim=(-1.6, 1.6),
      title="five cyclic-SGD particles")
a2 = a.twinx()
a2.plot(cyc.t, 0.2 * cyclic(cyc.t) * h_sharp, color="grey", lw=0.8, ls="--")
a2.axhline(2.0, color="grey", lw=0.6, ls=":")
a2.set_ylabel(r"$lr(t)\, C''_{sharp}$ (dashed; 2 dotted)", color="grey")
flat = {}
for label, res in results.items():
    w = res.w[..., 0]
    in_flat = np.mean(np.where(np.isfinite(w), w > barrier, False), axis=1)
    flat[label] = in_flat[-1]
    b.plot(res.t, in_flat, label=label)
b.set(xlabel="t = k lr", ylabel="fraction in the flat minimum", ylim=(-0.03, 1.03),
      title=f"B = {B}")
sd.plot.legend(b, fontsize=7)

# %%
# The measured numbers.
for label, f in flat.items():
    print(f"{label}: {f:.2f} of {n} particles in the flat minimum "
          f"after {t_end / period:g} cycles")
print(f"peak lr C''_sharp = {0.2 * h_sharp:.2f} > 2; "
      f"{np.mean(cyc.diverged):.1%} of cyclic-SGD particles diverged")
