r"""
# SGD's modified flow

One epoch of SGD on least squares (16 samples, `m = 4` fixed minibatches of `B = 4`
visited in a random order, `sd.SGD(lr, B, sampling="fixed")`). The mean iterate over many
orderings is compared with gradient flow on $C$, with the flow of GD's modified loss and
with the flow of SGD's modified loss (`sd.ModifiedFlow(lr, kind="sgd")`), all run for the
time $t = m\,lr$. The mean of SGD is implicitly regularised by the minibatch gradients'
norms, not the full gradient's. The dotted line is the Monte Carlo floor (2 standard
errors of the mean).

**Formula.** $\tilde C_{GD} = C + \frac{lr}{4}|\nabla C|^2$,
$\tilde C_{SGD} = C + \frac{lr}{4m}\sum_{k=1}^m |\nabla C_k|^2$; errors $O(m^2 lr^2)$,
$O(m^2 lr^2)$ and $O(m^3 lr^3)$.

**Reproduces.** Smith, Dherin, Barrett & De, *On the Origin of Implicit Regularization in
Stochastic Gradient Descent* (ICLR 2021).
"""

import os

import matplotlib.pyplot as plt
import numpy as np

import sdesim as sd

SCALE = float(os.environ.get("SDESIM_EXAMPLE_SCALE", "1"))  # < 1: smaller runs
BACKEND = "numba" if SCALE >= 0.5 else "numpy"
sd.plot.use()

# %%
# A finite-sum loss from the catalog: its per-sample terms are what SGD samples.
land = sd.catalog.linear_regression(n=16, d=2, noise=0.5, seed=0)
loss = land.loss
w0 = np.array(land.global_minimum.location) + np.array([2.0, -1.5])
B, m = 4, 4
lrs = 0.2 / 2.0 ** np.arange(5 if SCALE >= 0.5 else 2)
n = max(500, int(40_000 * SCALE))

# %%
# For each `lr`: one epoch (`m` steps) of `n` SGD runs, and the three flows for `t = m lr`.
names = ["gradient flow on C", "GD modified flow", "SGD modified flow"]
err, floor = np.zeros((3, len(lrs))), np.zeros(len(lrs))
for j, lr in enumerate(lrs):
    sgd = sd.simulate(loss, sd.SGD(lr, B, sampling="fixed"), w0, n, steps=m,
                      keep="final", backend=BACKEND, seed=11 + j)
    mean = sgd.final.mean(axis=0)
    floor[j] = 2 * np.linalg.norm(sgd.final.std(axis=0) / np.sqrt(n))
    flows = [sd.GradientFlow(), sd.ModifiedFlow(lr, order=1),
             sd.ModifiedFlow(lr, order=1, kind="sgd", batch_size=B)]
    for i, flow in enumerate(flows):
        res = sd.simulate(loss, flow, w0, t_end=m * lr, dt=lr, keep="final",
                          backend=BACKEND)
        err[i, j] = np.linalg.norm(mean - res.final[0])

fig, ax = plt.subplots(figsize=(5.2, 4.0), layout="constrained")
fits = [sd.analysis.fit_order(lrs, e) for e in err]
for i, (name, fit, marker) in enumerate(zip(names, fits, "osD")):
    ax.loglog(lrs, err[i], marker, color=f"C{i}", ms=4)
    ax.loglog(lrs, fit.predict(lrs), "-", color=f"C{i}", lw=1,
              label=f"{name}: slope {fit.slope:.2f}")
ax.loglog(lrs, floor, ":", color="grey", label=f"2 s.e. of the mean, {n} orderings")
ax.set_xticks(lrs, [f"{lr:.3g}" for lr in lrs])
ax.tick_params(axis="x", which="minor", labelbottom=False)
ax.set(xlabel="learning rate lr", ylabel=r"$|E[w_{SGD}] - w_{flow}|$, one epoch",
       title=f"one epoch of SGD, m = {m} fixed batches of B = {B}")
sd.plot.legend(ax, fontsize=7)

# %%
# The measured numbers.
for name, fit, theory in zip(names, fits, [2, 2, 3]):
    print(f"{name}: slope {fit.slope:.2f} (theory {theory})")
print(f"at lr = {lrs[-1]:.3g} SGD's modified flow is {err[1, -1] / err[2, -1]:.0f}x "
      "closer to the mean of SGD than GD's")
