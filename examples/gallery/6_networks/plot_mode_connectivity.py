r"""
# Mode connectivity

Two tanh MLPs 64-32-10 trained by SGD from different seeds on scikit-learn's digits: the
training and test loss along the straight line between them, and along a path found in
weight space (`sd.nets.connect`). Left: a quadratic Bezier curve whose bend is trained by
SGD with a random point of the curve at each step. Right: the nudged elastic band of
`sd.analysis.paths` relaxed on the full-batch training loss. The line crosses a barrier;
both paths have almost none.

**Formula.** $\phi_\theta(t) = (1-t)^2 a + 2t(1-t)\,\theta + t^2 b$, trained by
$\theta \leftarrow \theta - lr\,2t(1-t)\,\nabla C_B(\phi_\theta(t))$ with $t \sim U[0,1]$;
barrier $= \max_t C - \max(C(a), C(b))$.

**Reproduces.** Garipov, Izmailov, Podoprikhin, Vetrov & Wilson, *Loss Surfaces, Mode
Connectivity, and Fast Ensembling of DNNs* (NeurIPS 2018); Draxler, Veschgini, Salmhofer &
Hamprecht, *Essentially No Barriers in Neural Network Energy Landscape* (ICML 2018).
"""

import os

import matplotlib.pyplot as plt

import sdesim as sd
from sdesim.nets.connectivity import plot_connectivity
from sdesim.nets.objective import MLPObjective

SCALE = float(os.environ.get("SDESIM_EXAMPLE_SCALE", "1"))  # < 1: smaller runs
sd.plot.use()

# %%
# Two nets from init seeds 0 and 1 (SGD `lr = 0.1`, `B = 32`), and the net on the training and
# the test set as objectives.
train, test = sd.nets.load("digits")
net = sd.nets.MLP((64, 32, 10), activation="tanh", weight_decay=1e-3)
steps = max(300, int(4000 * SCALE))
a, b = (sd.nets.train(net, train, sd.SGD(0.1, 32), steps, record_every=steps, stats_every=0, seed=s,
                      init_seed=s).w[-1, 0] for s in (0, 1))
on_train, on_test = MLPObjective(net, train.x, train.y), MLPObjective(net, test.x, test.y)

# %%
# The two paths, and the loss along each against the line.
curve = sd.nets.connect(on_train, a, b, on_test, steps=max(500, int(8000 * SCALE)), lr=0.1, batch_size=32)
band = sd.nets.connect(on_train, a, b, on_test, steps=max(20, int(200 * SCALE)), method="neb", n_images=11)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained", sharey=True)
for ax, res, name in zip(axes, (curve, band), ("Bezier curve", "elastic band")):
    plot_connectivity(res, ax=ax)
    ax.set_title(f"line vs {name}")

# %%
# The barriers (training and test loss).
for name, res in (("Bezier curve", curve), ("elastic band", band)):
    bar = res.barriers()
    print(f"{name}: line barrier {bar['line_train']:.3f} (test {bar['line_test']:.3f}), "
          f"path barrier {bar['curve_train']:.4f} (test {bar['curve_test']:.4f})")
