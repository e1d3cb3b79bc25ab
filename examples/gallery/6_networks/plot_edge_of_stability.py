r"""
# Edge of stability

Full-batch GD on a real network: a tanh MLP 64-32-32-10 with the squared loss on 400 of
scikit-learn's digits (`sd.nets.train`), for three learning rates. The top Hessian
eigenvalue (Lanczos on exact Hessian-vector products) first rises ("progressive
sharpening") until it reaches GD's linear-stability limit $2/lr$ (dashed), then hovers
there while the loss keeps falling, non-monotonically.

**Formula.** GD is linearly stable at a minimum iff $\lambda_{max}(\nabla^2 C) < 2/lr$.

**Reproduces.** Cohen, Kaur, Li, Kolter & Talwalkar, *Gradient Descent on Neural Networks
Typically Occurs at the Edge of Stability* (ICLR 2021).
"""

import os

import matplotlib.pyplot as plt
import numpy as np

import sdesim as sd

SCALE = float(os.environ.get("SDESIM_EXAMPLE_SCALE", "1"))  # < 1: smaller runs
sd.plot.use()

# %%
# 400 training digits (standardised features), the net and full-batch GD. `train` records
# the loss every `record_every` steps and the top Hessian eigenvalue every `hessian_every`.
digits, _ = sd.nets.load("digits")
m = max(64, int(400 * SCALE))
data = sd.nets.Dataset(digits.x[:m], digits.y[:m], digits.n_classes, f"digits{m}")
steps = max(60, int(1500 * SCALE))
lrs = [0.1, 0.2, 0.45] if SCALE >= 0.5 else [0.45]
runs = {}
for lr in lrs:
    net = sd.nets.MLP((64, 32, 32, 10), activation="tanh", loss="squared")
    runs[lr] = sd.nets.train(net, data, sd.GD(lr), steps=steps, init_seed=0,
                             record_every=max(1, steps // 100),
                             hessian_every=max(1, steps // 40), hessian_k=1)

# %%
# Loss (left) and sharpness against $2/lr$ (right).
fig, (a, b) = plt.subplots(1, 2, figsize=(8.8, 3.6), layout="constrained")
plateau = {}
for i, (lr, res) in enumerate(runs.items()):
    r = res.reduced["net"]
    a.semilogy(r["step"], res.loss[:, 0], color=f"C{i}", lw=1, label=f"lr = {lr:g}")
    sharpness = r["hessian_eigenvalues"][:, 0]
    b.plot(r["hessian_step"], sharpness, color=f"C{i}", lw=1.2, label=f"lr = {lr:g}")
    b.axhline(2 / lr, color=f"C{i}", ls="--", lw=0.8)
    plateau[lr] = np.mean(sharpness[r["hessian_step"] >= steps / 2]) * lr / 2
a.set(xlabel="GD step k", ylabel="training loss (squared)",
      title=f"full-batch GD, {m} digits")
sd.plot.legend(a)
b.set(xlabel="GD step k", ylabel=r"sharpness $\lambda_{max}(\nabla^2 C)$",
      title="sharpness (solid) and 2 / lr (dashed)", ylim=(0, 1.15 * 2 / min(lrs)))
sd.plot.legend(b, fontsize=7)

# %%
# The measured numbers: late-time sharpness in units of the stability limit.
for lr, p in plateau.items():
    print(f"lr = {lr:g}: sharpness over the second half / (2/lr) = {p:.2f}")
