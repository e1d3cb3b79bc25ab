r"""The edge of stability: full-batch GD on a real network drives its sharpness to ``2 / lr`` (Cohen et al. 2021).

A small tanh MLP (64-32-32-10, squared loss, :mod:`sdesim.nets`) trained by full-batch GD on
400 training images of scikit-learn's digits, for several learning rates. The top Hessian
eigenvalue (Lanczos on exact Hessian-vector products) first rises ("progressive
sharpening") until it reaches the linear-stability limit :math:`2/lr` of GD, then hovers at
it while the loss keeps decreasing, non-monotonically.
"""

from __future__ import annotations

import numpy as np

from sdesim.gallery._common import figure, save, scaled

NAME = "edge_of_stability"
TITLE = "The edge of stability: GD's sharpness rises to 2/lr"


def make(out_dir, scale=1.0):
    import sdesim as sd
    from sdesim.nets import MLP, load, train
    from sdesim.nets.data import Dataset
    from sdesim.plot.style import OKABE_ITO

    full, _ = load("digits")
    m = scaled(400, scale, 64)
    data = Dataset(full.x[:m], full.y[:m], full.n_classes, f"digits{m}")
    lrs = [0.1, 0.2, 0.3, 0.45] if scale >= 0.5 else [0.2, 0.45]
    steps = scaled(2000, scale, 60)
    every = max(1, steps // 50)
    fig, (a, b) = figure(2, size=(4.3, 3.5))
    plateau = {}
    for lr, col in zip(lrs, OKABE_ITO):
        net = MLP((64, 32, 32, 10), activation="tanh", loss="squared")
        res = train(net, data, sd.GD(lr), steps=steps, record_every=max(1, every // 2), hessian_every=every,
                    hessian_k=1, init_seed=0)
        r = res.reduced["net"]
        a.semilogy(r["step"], res.loss[:, 0], color=col, lw=1, label=f"lr = {lr:g}")
        lam = r["hessian_eigenvalues"][:, 0]
        b.plot(r["hessian_step"], lam, color=col, lw=1.2, label=f"lr = {lr:g}")
        b.axhline(2 / lr, color=col, ls="--", lw=0.8)
        late = r["hessian_step"] >= steps / 2
        plateau[lr] = float(np.mean(lam[late]) * lr / 2)
    a.set(xlabel="GD step k", ylabel="training loss (squared)", title=f"full-batch GD, {m} digits")
    a.legend()
    b.set(xlabel="GD step k", ylabel=r"sharpness $\lambda_{max}(\nabla^2 C)$",
          title="sharpness (solid) and 2 / lr (dashed)", ylim=(0, 1.15 * max(2 / min(lrs), 10)))
    b.legend(loc="center right", fontsize=7, bbox_to_anchor=(1.0, 0.68))
    caption = (f"MLP 64-32-32-10 on {m} digits, full-batch GD for {steps} steps: late-time sharpness / (2/lr) = "
               + ", ".join(f"{v:.2f} (lr={k:g})" for k, v in plateau.items())
               + ": every run that reaches 2/lr hovers there.")
    return save(fig, out_dir, NAME, caption)
