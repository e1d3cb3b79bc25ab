r"""Backward error analysis: GD against modified flows of order 0 to 3 (slopes 1, 2, 3, 4).

GD with step ``lr`` is explicit Euler on :math:`w' = -\nabla C`; it follows the modified flow
:math:`\tilde f = f + lr f_2 + lr^2 f_3 + \dots` (Hairer, Lubich & Wanner), whose first
correction is the implicit gradient regulariser :math:`\tilde C = C + \frac{lr}{4}|\nabla C|^2`
(Barrett & Dherin 2021). After a fixed time ``t = 1`` on ``double_well_2d``, the distance
between GD and the flow with ``p`` correction terms falls as :math:`lr^{p+1}`; the slopes are
fitted by least squares on the log-log plot.
"""

from __future__ import annotations

import numpy as np

from sdesim.gallery._common import backend, figure, save, scaled

NAME = "modified_orders"
TITLE = "Modified flows: error against lr with slopes 1, 2, 3, 4"


def make(out_dir, scale=1.0):
    import sdesim as sd
    from sdesim import analysis

    loss = sd.catalog.double_well_2d().loss
    w0, t_end = (-0.3, 1.3), 1.0
    n_lr = scaled(6, scale, 3)
    lrs = 0.05 / 2.0 ** np.arange(n_lr)
    orders = [0, 1, 2, 3] if scale >= 0.5 else [0, 1]
    be = backend(scale)
    err = np.zeros((len(orders), len(lrs)))
    for j, lr in enumerate(lrs):
        gd = sd.simulate(loss, sd.GD(lr), w0, t_end=t_end, keep="final", backend=be, progress=False).final[0]
        for i, p in enumerate(orders):
            dyn = sd.GradientFlow() if p == 0 else sd.ModifiedFlow(lr, order=p)
            flow = sd.simulate(loss, dyn, w0, t_end=t_end, dt=lr, keep="final", backend=be,
                               progress=False).final[0]
            err[i, j] = np.linalg.norm(gd - flow)
    fig, ax = figure(1, size=(4.8, 3.8))
    fits = []
    for i, p in enumerate(orders):
        fit = analysis.fit_order(lrs, err[i])
        fits.append(fit)
        name = "gradient flow" if p == 0 else f"modified flow, order {p}"
        ax.loglog(lrs, err[i], "o", color=f"C{i}", ms=4)
        ax.loglog(lrs, fit.predict(lrs), "-", color=f"C{i}", lw=1,
                  label=f"{name}: slope {fit.slope:.2f} (expected {p + 1})")
    ax.set(xlabel="learning rate lr", ylabel=r"$|w_{GD}(t) - w_{flow}(t)|$ at t = 1",
           title="GD against the flows of backward error analysis")
    ax.legend(loc="lower right", fontsize=7)
    from matplotlib.ticker import NullFormatter
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(lrs, [f"{v:.3g}" for v in lrs])
    caption = (f"double_well_2d from {w0}, t = {t_end:g}, lr = {lrs[-1]:.3g}..{lrs[0]:g}: fitted slopes "
               + ", ".join(f"{f.slope:.2f} +- {f.slope_se:.2f}" for f in fits)
               + f" for flows of order {', '.join(map(str, orders))} (theory {', '.join(str(p + 1) for p in orders)}).")
    return save(fig, out_dir, NAME, caption)
