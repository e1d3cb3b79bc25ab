r"""
# Discrete SGD versus the SDE

The stationary variance of SGD and of its SDE on a 1D quadratic $C = h w^2/2$ with
per-sample gradient variance $s$ (`h = s = 1`, `B = 1`), as $lr\,h$ grows, divided by the
SDE's prediction. SGD follows the discrete Lyapunov equation and blows up at the
stability limit $lr\,h = 2$; the SDE (exact Ornstein-Uhlenbeck steps) stays at its
continuous prediction. Right: the final ensembles at $lr\,h = 1.5$ against both Gaussians.

**Formula.** $P_{SGD} = \dfrac{lr\,s}{B h (2 - lr\,h)}$, $P_{SDE} = \dfrac{lr\,s}{2 B h}$,
ratio $2 / (2 - lr\,h)$.

**Reproduces.** Li, Tai & E, *Stochastic modified equations and adaptive stochastic
gradient algorithms* (ICML 2017); Mandt, Hoffman & Blei, *Stochastic Gradient Descent as
Approximate Bayesian Inference* (JMLR 2017).
"""

import os

import matplotlib.pyplot as plt
import numpy as np

import sdesim as sd

SCALE = float(os.environ.get("SDESIM_EXAMPLE_SCALE", "1"))  # < 1: smaller runs
BACKEND = "numba" if SCALE >= 0.5 else "numpy"
sd.plot.use()

# %%
# A quadratic model: Hessian `h`, per-sample gradient noise covariance `s`. For each
# `lr`, an ensemble of SGD runs and of SDE runs, then their stationary variances (batch
# means over the second half of each run, with standard errors), in units of the SDE's
# prediction.
h, s, B = 1.0, 1.0, 1
qm = sd.QuadraticModel(hessian=[[h]], noise_covariance=[[s]])
lrs = [0.05, 0.2, 0.7, 1.0, 1.3, 1.5, 1.7, 1.9] if SCALE >= 0.5 else [0.05, 1.5, 1.9]
n = max(100, int(4000 * SCALE))
ratio = {"SGD": [], "SDE": []}
finals = {}
for i, lr in enumerate(lrs):
    sgd = sd.simulate(qm, sd.SGD(lr, B), [0.0], n, steps=400, backend=BACKEND,
                      seed=10 + i)
    sde = sd.simulate(qm, sd.SGDDiffusion(lr, B), [0.0], n, t_end=10, dt=0.05,
                      integrator="exact_ou", backend=BACKEND, seed=100 + i)
    p_sde = sd.analysis.stationary_variance_1d(h, s, lr, B, kind="sde")
    for name, res in (("SGD", sgd), ("SDE", sde)):
        st = sd.analysis.stationary_statistics(res, burn_in=0.5, batches=4)
        var, se = st.covariance[0, 0], st.covariance_se[0, 0]
        ratio[name].append((var / p_sde, se / p_sde))
    finals[lr] = {"SGD": sgd.final[:, 0], "SDE": sde.final[:, 0]}
ratio = {name: np.array(r) for name, r in ratio.items()}        # (lr, [ratio, se])

# %%
# Left: measured ratios (2 standard errors) against $2/(2 - lr\,h)$. Right: the two
# ensembles at $lr\,h = 1.5$ against the discrete and the continuous Gaussians.
fig, (a, b) = plt.subplots(1, 2, figsize=(8.6, 3.6), layout="constrained")
x = np.linspace(0, 1.97, 300)
a.plot(x, 2 / (2 - x), "k-", lw=1, label=r"discrete Lyapunov: $2/(2 - lr\,h)$")
a.axhline(1, color="k", ls=":", lw=1, label="SDE (continuous Lyapunov)")
for name, marker in (("SGD", "o"), ("SDE", "s")):
    r, se = ratio[name].T
    a.errorbar(np.array(lrs) * h, r, 2 * se, fmt=marker, ms=4, mfc="none", capsize=2,
               color=sd.plot.colour_for(name), label=f"{name}, {n} particles")
a.set(yscale="log", xlim=(0, 2.05), xlabel=r"$lr\, h$",
      ylabel="stationary variance / SDE prediction")
sd.plot.legend(a, fontsize=7)
P = {kind: sd.analysis.stationary_variance_1d(h, s, 1.5, B, kind=kind)
     for kind in ("discrete", "sde")}
edges = np.linspace(-4, 4, 61) * np.sqrt(P["discrete"])
for name in ("SGD", "SDE"):
    b.hist(finals[1.5][name], edges, density=True, histtype="step",
           color=sd.plot.colour_for(name), label=name)
for (kind, v), ls in zip(P.items(), ["-", ":"]):
    b.plot(edges, np.exp(-edges**2 / (2 * v)) / np.sqrt(2 * np.pi * v), "k", ls=ls,
           lw=1, label=f"{kind} Lyapunov: {v:.3g}")
b.set(xlabel="w", ylabel="density", title="final ensembles at lr h = 1.5")
sd.plot.legend(b, fontsize=7)

# %%
# The measured numbers.
for lr, (r, se), (r_sde, se_sde) in zip(lrs, ratio["SGD"], ratio["SDE"]):
    print(f"lr h = {lr * h:4.2f}: SGD {r:6.3f} +- {2 * se:.3f} "
          f"(theory {2 / (2 - lr * h):6.3f}), "
          f"SDE {r_sde:.3f} +- {2 * se_sde:.3f} (theory 1)")
