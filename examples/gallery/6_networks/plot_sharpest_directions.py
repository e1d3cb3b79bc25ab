r"""
# The sharpest directions along SGD

SGD from initialisation on a real network (tanh MLP 64-32-32-10, cross-entropy, no weight
decay, 400 digits, initial weights halved), for a grid of learning rates and batch sizes
(`sd.nets.sharpest_directions`). Every few steps, the top three Hessian eigenpairs
$(h_j, v_j)$ (Lanczos on exact Hessian-vector products) and the step's projection
$\Delta_j = (w_{k+1} - w_k)\cdot v_j$ on them. Left: the sharpness $h_1$ rises to a peak in
the first tens of steps, then falls as the loss goes to zero. Middle: the step along $v_1$
over the distance to the minimum of the loss along $v_1$, against $lr\,h_1$ (above 1: the
step overshoots; above 2: the loss along $v_1$ rises). Right: nudged SGD (step along the top
three directions times 0.1) against plain SGD at the largest `lr` and smallest `B`.

**Formula.** Along $v_j$, $C(w + s v_j) \approx C(w) + s\,g_j + h_j s^2/2$ with its minimum
at $s^*_j = -g_j / h_j$; the step moves $\Delta_j = -lr\,g_{B,j}$, so
$\Delta_j / s^*_j = lr\,h_j\,g_{B,j}/g_j$ ($= lr\,h_j$ for a full-batch step).

**Reproduces.** Jastrzebski, Kenton, Ballas, Fischer, Bengio & Storkey, *On the Relation
Between the Sharpest Directions of DNN Loss and the SGD Step Length* (ICLR 2019).
"""

import os

import matplotlib.pyplot as plt
import numpy as np

import sdesim as sd
from sdesim.nets.objective import MLPObjective

SCALE = float(os.environ.get("SDESIM_EXAMPLE_SCALE", "1"))  # < 1: smaller runs
sd.plot.use()

# %%
# The net on its data as an `Objective` (a PyTorch model through `TorchObjective` works the
# same), the grid, and the Hessian record steps: dense early, where the peak is.
digits, _ = sd.nets.load("digits")
m = max(100, int(400 * SCALE))
net = sd.nets.MLP((64, 32, 32, 10), activation="tanh", loss="cross_entropy")
objective = MLPObjective(net, digits.x[:m], digits.y[:m])
steps = max(60, int(400 * SCALE))
lrs, batch_sizes = ([0.25, 0.5, 1.0], [8, 64]) if SCALE >= 0.5 else ([0.5, 1.0], [8])
record = np.unique(np.r_[0:60:5, 60:steps:40]) if SCALE >= 0.5 else 10
res = sd.nets.sharpest_directions(objective, 0.5 * net.init(0), lrs, batch_sizes, steps, hessian_every=record,
                                  k=3, nudge_factor=0.1, seed=0)

# %%
# Sharpness along training (left), overshoot ratio of every recorded step (middle), plain
# against nudged SGD (right).
fig, (a, b, c) = plt.subplots(1, 3, figsize=(12.5, 3.7), layout="constrained")
for i, lr in enumerate(lrs):
    for B, ls in zip(batch_sizes, ("-", "--")):
        run = res.runs[lr, B]
        a.plot(run.step, run.eigenvalues[:, 0], ls, color=f"C{i}", lw=1.1, label=f"lr = {lr:g}, B = {B}")
        ratio = run.overshoot[:-1, 0]
        b.plot(run.lr * run.eigenvalues[:-1, 0], ratio, "o" if ls == "-" else "s", color=f"C{i}", ms=3,
               alpha=0.6)
a.set(xlabel="SGD step k", ylabel=r"sharpness $h_1$", title="top Hessian eigenvalue along SGD")
sd.plot.legend(a, fontsize=7)
for level in (1, 2):
    b.axhline(level, color="k", lw=0.8, ls=":" if level == 1 else "--")
b.set(xlabel=r"$lr\, h_1$", ylabel=r"$\Delta_1 / s^*_1$ (colours as left)", ylim=(-4, 6),
      title="step along $v_1$ / distance to its minimum")
(lr_n, B_n), = res.nudged
for run, name, col in ((res.runs[lr_n, B_n], "plain SGD", "C0"), (res.nudged[lr_n, B_n], "nudged SGD", "C3")):
    c.semilogy(run.step, run.loss, color=col, lw=1.2, label=f"{name}: loss")
    c.semilogy(run.step, run.eigenvalues[:, 0], ":", color=col, lw=1.2, label=f"{name}: $h_1$")
c.set(xlabel="SGD step k", ylabel="training loss, sharpness", title=f"lr = {lr_n:g}, B = {B_n}: plain vs nudged")
sd.plot.legend(c, fontsize=7)

# %%
# The paper's claims against the measurements.
print(sd.nets.sharpest.format_sharpest(res))
