r"""
# Minimum-energy paths (NEB)

Climbing-image nudged elastic bands from A to C and from C to B on the Mueller-Brown
potential (`sd.analysis.nudged_elastic_band`): the bands relax onto the minimum-energy
path and their climbing images converge to the two saddles, whose energies are the
published reference values. Right: the energy along the minimum-energy path against the
straight line from A to B (`sd.analysis.interpolate`), which crosses a barrier about 50
higher.

**Formula.** NEB force on image $i$:
$-\nabla C|_\perp + k\,(|R_{i+1} - R_i| - |R_i - R_{i-1}|)\,\tau_i$; the climbing image
follows $-\nabla C + 2\,(\nabla C \cdot \tau)\,\tau$.

**Reproduces.** Henkelman, Uberuaga & Jónsson, *A climbing image nudged elastic band
method for finding saddle points and minimum energy paths* (J. Chem. Phys. 2000);
reference saddle energies -40.66 and -72.25 (Müller & Brown 1979).
"""

import os

import matplotlib.pyplot as plt
import numpy as np

import sdesim as sd

SCALE = float(os.environ.get("SDESIM_EXAMPLE_SCALE", "1"))  # < 1: smaller runs
sd.plot.use()

# %%
# Two bands between the catalog's minima, and the straight line A-B.
land = sd.catalog.muller_brown()
loss = land.loss
minima = {m.name.split()[-1]: np.array(m.location) for m in land.minima}
n_images = max(7, int(21 * SCALE))
tol = 1e-4 if SCALE >= 0.5 else 1e-1
bands = {}
for start, end in (("A", "C"), ("C", "B")):
    bands[f"{start}-{end}"] = sd.analysis.nudged_elastic_band(
        loss, minima[start], minima[end], n_images=n_images, tol=tol,
        max_steps=20_000)
alpha, line = sd.analysis.interpolate(loss, minima["A"], minima["B"], n=201)

# %%
# The bands on the landscape (stars: the climbing images) and the energy along the paths.
fig, (a, b) = plt.subplots(1, 2, figsize=(8.8, 3.9), layout="constrained")
sd.plot.contours(loss, land.bounds, a)
a.plot(*np.array([minima["A"], minima["B"]]).T, "--", color="#E69F00", lw=1.2,
       label="straight line A-B")
for (key, band), colour in zip(bands.items(), ["#0072B2", "#009E73"]):
    a.plot(*band.images.T, "o-", ms=3, color=colour, lw=1.2, label=f"NEB {key}")
    a.plot(*band.saddle, "*", ms=12, color="#D55E00", mec="k", mew=0.5)
for name, location in minima.items():
    a.annotate(name, location, color="w", fontsize=10, fontweight="bold", ha="right",
               va="bottom")
sd.plot.legend(a, fontsize=7)
path = np.vstack([bands["A-C"].images, bands["C-B"].images[1:]])
energy = np.concatenate([bands["A-C"].values, bands["C-B"].values[1:]])
arc = np.linalg.norm(np.diff(path, axis=0), axis=1).cumsum()
length = np.linalg.norm(minima["B"] - minima["A"])
b.plot(alpha * length, line, "--", color="#E69F00", label="straight line A-B")
b.plot(np.r_[0, arc], energy, "o-", ms=3, color="#0072B2",
       label="minimum-energy path A-C-B")
b.set(xlabel="arc length", ylabel="C", title="energy along the paths")
sd.plot.legend(b, fontsize=7)

# %%
# The measured numbers.
for key, reference in (("A-C", -40.66), ("C-B", -72.25)):
    band = bands[key]
    print(f"band {key}: saddle energy {band.saddle_value:.2f} "
          f"(reference {reference}), converged: {band.converged}")
print(f"the straight line A-B peaks at {line.max():.1f}")
