r"""
# Modified flows: convergence orders

GD with step `lr` is explicit Euler on $w' = -\nabla C$; it follows the modified flow
$\tilde f = f + lr\,f_2 + lr^2 f_3 + \dots$ of backward error analysis, whose first
correction is the implicit gradient regulariser $\tilde C = C + \frac{lr}{4}|\nabla C|^2$.
After a fixed time `t = 1` on `double_well_2d`, the distance between GD and the flow with
`p` correction terms falls as $lr^{p+1}$: the slopes are fitted by least squares
(`sd.analysis.fit_order`).

**Formula.** $|w_{GD}(t) - w_p(t)| = O(lr^{p+1})$; $f_2 = -\tfrac12 f'f$,
$f_3 = \tfrac1{12} f''(f,f) + \tfrac13 f'f'f$.

**Reproduces.** Hairer, Lubich & Wanner, *Geometric Numerical Integration* (2006),
ch. IX; Barrett & Dherin, *Implicit Gradient Regularization* (ICLR 2021).
"""

import os

import matplotlib.pyplot as plt
import numpy as np

import sdesim as sd

SCALE = float(os.environ.get("SDESIM_EXAMPLE_SCALE", "1"))  # < 1: smaller runs
BACKEND = "numba" if SCALE >= 0.5 else "numpy"
sd.plot.use()

# %%
# GD and the flows of order 0 (gradient flow) to 3, run to `t = 1` for halving `lr`; the
# flows take steps of `lr` with their default high-order integrator.
loss = sd.catalog.double_well_2d().loss
w0, t_end = (-0.3, 1.3), 1.0
lrs = 0.05 / 2.0 ** np.arange(6 if SCALE >= 0.5 else 3)
orders = [0, 1, 2, 3] if SCALE >= 0.5 else [0, 1]
err = np.zeros((len(orders), len(lrs)))
for j, lr in enumerate(lrs):
    gd = sd.simulate(loss, sd.GD(lr), w0, t_end=t_end, keep="final", backend=BACKEND)
    for i, p in enumerate(orders):
        flow = sd.GradientFlow() if p == 0 else sd.ModifiedFlow(lr, order=p)
        res = sd.simulate(loss, flow, w0, t_end=t_end, dt=lr, keep="final",
                          backend=BACKEND)
        err[i, j] = np.linalg.norm(gd.final[0] - res.final[0])

# %%
# The errors on log-log axes with their fitted slopes.
fig, ax = plt.subplots(figsize=(5.2, 4.0), layout="constrained")
fits = [sd.analysis.fit_order(lrs, e) for e in err]
for i, (p, fit) in enumerate(zip(orders, fits)):
    name = "gradient flow" if p == 0 else f"modified flow, order {p}"
    ax.loglog(lrs, err[i], "o", color=f"C{i}", ms=4)
    ax.loglog(lrs, fit.predict(lrs), "-", color=f"C{i}", lw=1,
              label=f"{name}: slope {fit.slope:.2f} (expected {p + 1})")
ax.set_xticks(lrs, [f"{lr:.3g}" for lr in lrs])
ax.tick_params(axis="x", which="minor", labelbottom=False)
ax.set(xlabel="learning rate lr", ylabel=r"$|w_{GD}(t) - w_{flow}(t)|$ at t = 1",
       title="GD against the flows of backward error analysis")
sd.plot.legend(ax, fontsize=7)
sd.plot.tidy_ticks(fig)                                 # hides tick labels that overlap

# %%
# The measured numbers.
for p, fit in zip(orders, fits):
    print(f"order {p}: slope {fit.slope:.2f} +- {fit.slope_se:.2f} (theory {p + 1})")
