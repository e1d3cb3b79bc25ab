r"""SGD's modified flow (Smith, Dherin, Barrett & De 2021) against GD's, after one epoch.

Least squares on 16 samples (catalog ``linear_regression``) split into ``m = 4`` fixed
minibatches of ``B = 4``, visited in a random order each epoch (``SGD(sampling="fixed")``).
The mean SGD iterate after one epoch, over 40,000 orderings, is compared with gradient flow
on ``C``, with the flow of GD's modified loss and with the flow of SGD's modified loss, all
run for the same time ``t = m lr``:

.. math:: \tilde C_{GD} = C + \frac{lr}{4}|\nabla C|^2, \qquad
          \tilde C_{SGD} = C + \frac{lr}{4m}\sum_{k=1}^m |\nabla C_k|^2 .

The first two are off by :math:`O(m^2 lr^2)`; SGD's modified flow by :math:`O(m^3 lr^3)`: the
mean of SGD is implicitly regularised by the minibatch gradients' norms, not the full one's.
"""

from __future__ import annotations

import numpy as np

from sdesim.gallery._common import backend, figure, save, scaled

NAME = "sgd_modified_flow"
TITLE = "SGD's modified flow against GD's after one epoch"


def make(out_dir, scale=1.0):
    import sdesim as sd
    from sdesim import analysis

    land = sd.catalog.linear_regression(n=16, d=2, noise=0.5, seed=0)
    loss = land.loss
    w0 = np.array(land.global_minimum.location) + np.array([2.0, -1.5])
    B, m = 4, 4
    lrs = 0.2 / 2.0 ** np.arange(scaled(5, scale, 2))
    n, be = scaled(40_000, scale, 500), backend(scale)
    names = ["gradient flow on $C$", r"GD modified flow ($\tilde C_{GD}$)", r"SGD modified flow ($\tilde C_{SGD}$)"]
    err = np.zeros((3, len(lrs)))
    se = np.zeros(len(lrs))
    for j, lr in enumerate(lrs):
        sgd = sd.simulate(loss, sd.SGD(lr, B, sampling="fixed"), w0, n, steps=m, keep="final", backend=be,
                          seed=11 + j, progress=False)
        mean = sgd.final.mean(axis=0)
        se[j] = np.linalg.norm(sgd.final.std(axis=0) / np.sqrt(n))
        flows = (sd.GradientFlow(), sd.ModifiedFlow(lr, order=1),
                 sd.ModifiedFlow(lr, order=1, kind="sgd", batch_size=B))
        for i, dyn in enumerate(flows):
            f = sd.simulate(loss, dyn, w0, t_end=m * lr, dt=lr, keep="final", backend=be, progress=False).final[0]
            err[i, j] = np.linalg.norm(mean - f)
    fig, ax = figure(1, size=(4.9, 3.9))
    fits = []
    for i, (name, style, col) in enumerate(zip(names, ["o", "s", "D"], ["#0072B2", "#000000", "#D55E00"])):
        fit = analysis.fit_order(lrs, err[i])
        fits.append(fit)
        ax.loglog(lrs, err[i], style, color=col, ms=4)
        ax.loglog(lrs, fit.predict(lrs), "-", color=col, lw=1, label=f"{name}: slope {fit.slope:.2f}")
    ax.loglog(lrs, 2 * se, ":", color="grey", lw=1, label=f"2 s.e. of the mean over {n} orderings")
    from matplotlib.ticker import NullFormatter
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(lrs, [f"{v:.3g}" for v in lrs])
    ax.set(xlabel="learning rate lr", ylabel=r"$|E[w_{SGD}] - w_{flow}|$ after one epoch",
           title=f"one epoch of SGD, m = {m} fixed batches of B = {B}")
    ax.legend(loc="lower right", fontsize=7)
    caption = (f"linear regression, n = 16, m = {m} batches, mean over {n} orderings, lr = {lrs[-1]:.3g}..{lrs[0]:g}: "
               f"slopes {fits[0].slope:.2f} (gradient flow), {fits[1].slope:.2f} (GD modified flow), "
               f"{fits[2].slope:.2f} (SGD modified flow; theory 2, 2, 3); at lr = {lrs[-1]:.3g} SGD's modified flow is "
               f"{err[1, -1] / err[2, -1]:.0f}x closer than GD's.")
    return save(fig, out_dir, NAME, caption)
