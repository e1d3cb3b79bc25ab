r"""Every lens on one landscape: GD, SGD, gradient flow, modified flows and the SGD diffusion.

On the catalog's ``double_well_2d``, :math:`C = (x^2-1)^2 + 2y^2 + \tfrac12 xy`, with
``lr = 0.1`` and ``B = 4`` (temperature ``lr/2B``), from one start. Right panel: the
distance of each flow to the GD iterates at the same time ``t = k lr``; backward error
analysis predicts :math:`O(lr)` for gradient flow and :math:`O(lr^{p+1})` for the modified
flow of order ``p`` (Hairer, Lubich & Wanner; Barrett & Dherin 2021).
"""

from __future__ import annotations

import numpy as np

from sdesim.gallery._common import backend, figure, fmt, save, scaled

NAME = "lenses"
TITLE = "GD, SGD, gradient flow, modified flows and the SDE on one landscape"


def make(out_dir, scale=1.0):
    import sdesim as sd
    from sdesim import plot

    land = sd.catalog.double_well_2d()
    loss = land.loss
    lr, B, t_end, w0 = 0.1, 4, 3.0, (-0.3, 1.3)
    n = scaled(2000, scale, 50)
    be = backend(scale)
    sub = 10                                     # flow steps per GD step
    gd = sd.simulate(loss, sd.GD(lr), w0, t_end=t_end, backend=be)
    sgd = sd.simulate(loss, sd.SGD(lr, B), w0, n, t_end=t_end, backend=be, seed=1)
    sde = sd.simulate(loss, sd.SGDDiffusion(lr, B), w0, n, t_end=t_end, dt=lr / sub, record_every=sub,
                      backend=be, seed=2)
    flows = [sd.simulate(loss, dyn, w0, t_end=t_end, dt=lr / sub, record_every=sub, backend=be)
             for dyn in (sd.GradientFlow(), sd.ModifiedFlow(lr, order=1), sd.ModifiedFlow(lr, order=2))]

    fig, (a, b) = figure(2, size=(4.6, 3.9))
    plot.trajectories(loss, [gd, sgd, flows[0], flows[1], sde], bounds=[(-1.6, 1.6), (-0.7, 1.5)], ax=a,
                      max_paths=2)
    a.legend(loc="lower right", fontsize=6.5)
    a.set_title(f"lr = {lr:g}, B = {B}, T = lr/2B = {lr / (2 * B):g}")
    dist = {}
    for res, style in zip(flows, ["-", "--", ":"]):
        m = min(len(res.t), len(gd.t))
        d = np.linalg.norm(res.w[:m, 0] - gd.w[:m, 0], axis=-1)
        dist[res.label] = d.max()
        b.semilogy(gd.t[1:m], d[1:], style, color=plot.colour_for(res.label), label=res.label)
    b.set(xlabel="t = k lr", ylabel=r"$|w_{flow}(t) - w_{GD}(t)|$", ylim=(1e-7, 1),
          title="distance to the GD iterates")
    b.legend(loc="upper right", fontsize=7)
    d = list(dist.values())
    caption = (f"double_well_2d, lr={lr:g}, B={B}, {n} SGD/SDE particles: the GD iterates stay within "
               f"{fmt(d[0])} of gradient flow, {fmt(d[1])} of the order-1 modified flow and "
               f"{fmt(d[2])} of the order-2 one (max over t <= {t_end:g}).")
    return save(fig, out_dir, NAME, caption)
