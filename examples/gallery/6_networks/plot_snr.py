r"""
# Gradient signal-to-noise

The minibatch gradient's signal-to-noise ratio along training
(`sd.analysis.snr_along`, and `grad_snr` recorded by `sd.nets.train`). Far from a
minimum the mean gradient dominates (SNR > 1: a drift phase); near it the per-sample
noise does (SNR < 1: a diffusion phase, the regime the SGD diffusion and its temperature
$lr/2B$ describe). Left: 200 SGD runs of logistic regression (64 samples, real
minibatches), `lr = 0.5`, `B = 4`. Right: one SGD run of an MLP 64-32-10 on 400 digits,
`lr = 0.1`, `B = 16`. The loss (dashed) flattens as the SNR crosses 1.

**Formula.** $\mathrm{SNR} = B\,|\nabla C|^2 / \operatorname{tr}\Sigma_1$.

**Reproduces.** Shwartz-Ziv & Tishby, *Opening the Black Box of Deep Neural Networks via
Information* (2017); McCandlish, Kaplan, Amodei et al., *An Empirical Model of
Large-Batch Training* (2018).
"""

import os

import matplotlib.pyplot as plt
import numpy as np

import sdesim as sd

SCALE = float(os.environ.get("SDESIM_EXAMPLE_SCALE", "1"))  # < 1: smaller runs
BACKEND = "numba" if SCALE >= 0.5 else "numpy"
sd.plot.use()


def first_below_one(t, snr):
    below = np.flatnonzero(snr < 1)
    if below.size:
        return f"below 1 from t = {t[below[0]]:.3g}"
    return f"above 1 throughout (t <= {t[-1]:.3g})"


# %%
# An ensemble of SGD runs on a finite-sum loss (64 samples): every run draws real
# minibatches; `snr_along` evaluates the full gradient and the per-sample covariance at
# every recorded state.
land = sd.catalog.logistic_regression()
lr, B, n = 0.5, 4, max(20, int(200 * SCALE))
res = sd.simulate(land.loss, sd.SGD(lr, B), [5.0, 5.0], n,
                  t_end=max(20, 200 * SCALE), backend=BACKEND, seed=8)
snr = sd.analysis.snr_along(res, land.loss)                  # (time, particle)
lo, median, hi = np.nanpercentile(snr, [10, 50, 90], axis=1)

# %%
# A real network: `train` records `grad_snr` $= |\nabla C|^2 / E|g_B - \nabla C|^2$ (one
# full-batch gradient and one per-sample pass per record); times `B` it is the SNR above.
digits, _ = sd.nets.load("digits")
m = max(64, int(400 * SCALE))
data = sd.nets.Dataset(digits.x[:m], digits.y[:m], digits.n_classes, f"digits{m}")
net = sd.nets.MLP((64, 32, 10), activation="tanh", loss="cross_entropy")
lr_net, B_net = 0.1, 16
steps = max(80, int(2000 * SCALE))
run = sd.nets.train(net, data, sd.SGD(lr_net, B_net), steps=steps, record_every=10)
t_net = run.reduced["net"]["step"] * lr_net
snr_net = B_net * np.asarray(run.reduced["net"]["grad_snr"])

fig, (a, b) = plt.subplots(1, 2, figsize=(9.0, 3.6), layout="constrained")
a.fill_between(res.t[1:], lo[1:], hi[1:], alpha=0.2, lw=0, label="10-90% of runs")
a.loglog(res.t[1:], median[1:], label=f"median SNR, lr = {lr:g}, B = {B}")
a2 = a.twinx()
excess = np.nanmean(res.loss, axis=1) - land.global_minimum.value
a2.loglog(res.t[1:], excess[1:], color="grey", lw=0.8, ls="--")
a2.set_ylabel(r"$C - C_{min}$ (dashed)", color="grey")
a.set(xlabel="t = k lr", ylabel=r"SNR $= B|\nabla C|^2 / \mathrm{tr}\,\Sigma_1$",
      title=f"logistic regression, {n} runs")
b.loglog(t_net[1:], snr_net[1:], label=f"SNR, lr = {lr_net:g}, B = {B_net}")
b2 = b.twinx()
b2.loglog(t_net[1:], run.loss[1:, 0], color="grey", lw=0.8, ls="--")
b2.set_ylabel("training loss (dashed)", color="grey")
b.set(xlabel="t = k lr", ylabel="SNR", title=f"MLP 64-32-10 on {m} digits")
for ax in (a, b):
    ax.axhline(1, color="k", ls=":", lw=1)
    sd.plot.legend(ax, fontsize=7)

# %%
# The measured numbers.
print(f"logistic regression: median SNR {median[1]:.3g} -> {median[-1]:.2g}, "
      f"{first_below_one(res.t, median)}")
print(f"MLP on digits: SNR {snr_net[1]:.3g} -> {snr_net[-1]:.2g}, "
      f"{first_below_one(t_net, snr_net)}")
