r"""
# Modified flows on a real network

Full-batch GD on a real network, a tanh MLP 64-16-10 with cross-entropy on 128 of
scikit-learn's digits, wrapped as a loss (`sd.NetworkLoss`) so that `sd.simulate` runs GD,
gradient flow and the modified flows on it from one initialisation. Over a fixed time
$t = k\,lr$ the largest distance between GD and gradient flow shrinks like $lr$, to the
order-1 modified flow like $lr^2$ and to the order-2 one like $lr^3$; the mean of SGD over
random orders of fixed minibatches follows Smith et al.'s modified flow to $O(lr^2)$.

**Formula.** $\dot w = -\nabla\big(C + \tfrac{lr}{4}|\nabla C|^2\big)$ (order 1, exact
Hessian-vector products); order 2 adds $-lr^2\big(\tfrac13 H^2 \nabla C + \tfrac1{12}\nabla^3 C[\nabla C, \nabla C]\big)$;
SGD: $\tilde C_{SGD} = C + \tfrac{lr}{4m}\sum_k |\nabla C_k|^2$ over the $m$ batches.

**Reproduces.** Barrett & Dherin, *Implicit Gradient Regularization* (ICLR 2021); Smith,
Dherin, Barrett & De, *On the Origin of Implicit Regularization in Stochastic Gradient
Descent* (ICLR 2021).
"""

import os

import matplotlib.pyplot as plt
import numpy as np

import sdesim as sd

SCALE = float(os.environ.get("SDESIM_EXAMPLE_SCALE", "1"))  # < 1: smaller runs
sd.plot.use()

# %%
# The network as a loss: an `Objective` (loss, gradient, exact HVP, per-sample gradients on
# flat parameters) wrapped by `sd.NetworkLoss`.
digits, _ = sd.nets.load("digits")
n, B = 128, 32
net = sd.nets.MLP((64, 16, 10), activation="tanh", loss="cross_entropy")
loss = sd.NetworkLoss(sd.nets.MLPObjective(net, digits.x[:n], digits.y[:n]))
w0 = net.init(0)
t_end = 1.6 if SCALE >= 0.5 else 0.4
lrs = [0.2, 0.1, 0.05, 0.025] if SCALE >= 0.5 else [0.1, 0.05, 0.025]
seeds = max(8, int(100 * SCALE))

# %%
# GD against the flows, and the mean of `seeds` SGD runs (fixed batches in a random order
# every epoch) against gradient flow and Smith et al.'s flow at the ends of epochs.
flows = {"gradient flow": lambda lr: sd.GradientFlow(), "order 1": lambda lr: sd.ModifiedFlow(lr, order=1),
         "order 2": lambda lr: sd.ModifiedFlow(lr, order=2)}
dist = {name: [] for name in [*flows, "SGD mean vs gradient flow", "SGD mean vs Smith et al."]}
curves = {}
m = n // B
for lr in lrs:
    steps = round(t_end / lr)
    gd = sd.simulate(loss, sd.GD(lr), w0, steps=steps)
    curves[lr] = {"GD": (gd.t, gd.loss[:, 0])}
    for name, make in flows.items():
        flow = sd.simulate(loss, make(lr), w0, steps=steps, dt=lr)
        dist[name].append(np.max(np.linalg.norm(gd.w[:, 0] - flow.w[:, 0], axis=1)))
        curves[lr][name] = (flow.t, flow.loss[:, 0])
    sgd = sd.simulate(loss, sd.SGD(lr, batch_size=B, sampling="fixed"), w0, n_particles=seeds, steps=steps,
                      record_every=m, seed=1)
    mean = sgd.w.mean(axis=1)
    noise = sgd.w.var(axis=1, ddof=1).sum(axis=1) / seeds      # Monte Carlo part of |mean - flow|^2
    for name, dyn in (("SGD mean vs gradient flow", sd.GradientFlow()),
                      ("SGD mean vs Smith et al.", sd.ModifiedFlow(lr, kind="sgd", batch_size=B))):
        flow = sd.simulate(loss, dyn, w0, steps=steps, dt=lr, record_every=m)
        d2 = np.sum((mean - flow.w[:, 0]) ** 2, axis=1) - noise
        dist[name].append(np.sqrt(max(d2.max(), noise.max())))
    curves[lr]["SGD mean"] = (sgd.t, loss.value(mean))

# %%
# Loss curves at the largest learning rate (left) and the distances with their slopes (right).
fig, (a, b) = plt.subplots(1, 2, figsize=(9.5, 3.8), layout="constrained")
for i, (label, (t, c)) in enumerate(curves[lrs[0]].items()):
    a.plot(t, c, color="k" if label == "GD" else f"C{i}", lw=2 if label == "GD" else 1.1,
           ls="--" if label in flows else "-", marker="o" if label == "SGD mean" else None, label=label)
a.set(xlabel="t = k lr", ylabel="training loss", title=f"lr = {lrs[0]:g}")
sd.plot.legend(a, fontsize=7)
slopes = {}
for i, (name, d) in enumerate(dist.items()):
    slopes[name] = np.polyfit(np.log(lrs), np.log(d), 1)[0]
    b.loglog(lrs, d, "o-" if i < 3 else "s--", color=f"C{i}", label=f"{name}: slope {slopes[name]:.2f}")
b.set(xlabel="learning rate", ylabel=f"max distance over t <= {t_end:g}", title="GD and SGD against the flows")
sd.plot.legend(b, fontsize=7)

# %%
# The measured slopes (expected 1, 2, 3 for GD; 1 and 2 for the SGD mean).
for name, s in slopes.items():
    print(f"{name}: slope {s:.2f}")
