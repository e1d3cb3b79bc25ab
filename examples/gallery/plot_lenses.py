r"""
# Every lens on one landscape

GD, minibatch SGD, gradient flow, the modified flows of backward error analysis and the
SGD diffusion, all from one start on the catalog's `double_well_2d`,
$C = (x^2 - 1)^2 + 2y^2 + xy/2$, with `lr = 0.1` and `B = 4` (temperature $T = lr/2B$),
on one clock $t = k\,lr$. Right: the distance of gradient flow and of the modified flows
of order 1 and 2 to the GD iterates at equal times.

**Formula.** $|w_{GD}(t) - w_p(t)| = O(lr^{p+1})$ for the flow with $p$ correction terms,
$\tilde f = f + lr\,f_2 + lr^2 f_3$, $f_2 = -\tfrac12 f'f$.

**Reproduces.** Backward error analysis of GD: Hairer, Lubich & Wanner, *Geometric
Numerical Integration* (2006), ch. IX; Barrett & Dherin, *Implicit Gradient
Regularization* (ICLR 2021). The SDE: Li, Tai & E, *Stochastic modified equations and
adaptive stochastic gradient algorithms* (ICML 2017).
"""

# %%
# `SCALE` below 1 shrinks the ensembles (the tests run every example at 0.05, on the NumPy
# reference backend, which compiles nothing).
import os

import matplotlib.pyplot as plt
import numpy as np

import sdesim as sd

SCALE = float(os.environ.get("SDESIM_EXAMPLE_SCALE", "1"))
BACKEND = "numba" if SCALE >= 0.5 else "numpy"
sd.plot.use()

# %%
# Every lens from one start, recorded at the same times `t = 0, lr, 2 lr, ...`. GD and
# the flows are deterministic: `sd.compare` runs them as one particle.
loss = sd.catalog.double_well_2d().loss
lr, B, t_end, w0 = 0.1, 4, 3.0, (-0.3, 1.3)
n = max(50, int(2000 * SCALE))
lenses = [sd.GD(lr), sd.SGD(lr, B), sd.GradientFlow(), sd.ModifiedFlow(lr, order=1),
          sd.ModifiedFlow(lr, order=2), sd.SGDDiffusion(lr, B)]
gd, sgd, flow, mf1, mf2, sde = sd.compare(
    loss, lenses, w0, n_particles=n, t_end=t_end, dt=lr / 10, record_dt=lr,
    backend=BACKEND, seed=1)

# %%
# Left: the paths and the final clouds. Right: how far each flow strays from the GD
# iterates; backward error analysis predicts $O(lr)$, $O(lr^2)$, $O(lr^3)$.
fig, (a, b) = plt.subplots(1, 2, figsize=(9.2, 3.9), layout="constrained")
sd.plot.trajectories(loss, [gd, sgd, flow, mf1, sde], ax=a, max_paths=2,
                     bounds=[(-1.6, 1.6), (-0.7, 1.5)])
a.set_title(f"lr = {lr:g}, B = {B}, T = lr/2B = {lr / (2 * B):g}")
distance = {}
for res, style in zip([flow, mf1, mf2], ["-", "--", ":"]):
    d = np.linalg.norm(res.w[:, 0] - gd.w[:, 0], axis=-1)
    distance[res.label] = d.max()
    b.semilogy(gd.t[1:], d[1:], style, color=sd.plot.colour_for(res.label),
               label=res.label)
b.set(xlabel="t = k lr", ylabel=r"$|w_{flow}(t) - w_{GD}(t)|$", ylim=(1e-7, 1),
      title="distance to the GD iterates")
sd.plot.legend(b, fontsize=7)

# %%
# The measured numbers.
for label, d in distance.items():
    print(f"{label}: at most {d:.3g} from the GD iterates (t <= {t_end:g})")
print(f"final mean of SGD {sgd.final.mean(axis=0).round(3)}, "
      f"of the SDE {sde.final.mean(axis=0).round(3)} ({n} particles each)")
