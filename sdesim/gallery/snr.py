r"""Gradient signal-to-noise along training: a drift phase, then a diffusion phase (Shwartz-Ziv & Tishby 2017).

The minibatch gradient's signal-to-noise ratio :math:`\mathrm{SNR} = B\,|\nabla C|^2 / \operatorname{tr}\Sigma_1`
(``sdesim.analysis.gradient_snr``). Far from a minimum the mean gradient dominates (``SNR >> 1``:
drift); near it the per-sample noise does (``SNR < 1``: diffusion, the regime the SGD diffusion and
its temperature ``lr/2B`` describe). Left: an ensemble of SGD runs (``lr = 0.5``, ``B = 4``) on the
catalog's ``logistic_regression`` (64 samples, 2 weights, real minibatch sampling). Right: one SGD
run of a small MLP on 400 scikit-learn digits (``sdesim.nets.train``, ``lr = 0.1``, ``B = 16``).
"""

from __future__ import annotations

import numpy as np

from sdesim.gallery._common import backend, figure, save, scaled

NAME = "snr"
TITLE = "Gradient signal-to-noise along training"


def make(out_dir, scale=1.0):
    import sdesim as sd
    from sdesim import analysis
    from sdesim.nets import MLP, load, train
    from sdesim.nets.data import Dataset

    land = sd.catalog.logistic_regression()
    loss = land.loss
    lr, B = 0.5, 4
    n = scaled(200, scale, 20)
    res = sd.simulate(loss, sd.SGD(lr, B), [5.0, 5.0], n, t_end=scaled(200, scale, 20), record_every=1, backend=backend(scale), seed=8, progress=False)
    snr = analysis.snr_along(res, loss)
    lo, med, hi = np.nanpercentile(snr, [10, 50, 90], axis=1)

    full, _ = load("digits")
    m = scaled(400, scale, 64)
    data = Dataset(full.x[:m], full.y[:m], full.n_classes, f"digits{m}")
    net = MLP((64, 32, 10), activation="tanh", loss="cross_entropy")
    lr_n, B_n = 0.1, 16
    steps = scaled(3000, scale, 80)
    tr = train(net, data, sd.SGD(lr_n, B_n), steps=steps, record_every=scaled(5, scale, 5), seed=0)
    r = tr.reduced["net"]
    snr_net = B_n * np.asarray(r["grad_snr"])

    fig, (a, b) = figure(2, size=(4.3, 3.6))
    col = sd.plot.colour_for("SGD")
    a.fill_between(res.t[1:], lo[1:], hi[1:], color=col, alpha=0.2, lw=0, label="10-90% of runs")
    a.loglog(res.t[1:], med[1:], color=col, label=f"SGD median, lr = {lr:g}, B = {B}")
    a.axhline(1, color="k", ls=":", lw=1)
    a.set(xlabel="t = k lr", ylabel=r"SNR $= B|\nabla C|^2 / \mathrm{tr}\,\Sigma_1$",
          title=f"logistic regression, {n} runs")
    ax2 = a.twinx()
    ax2.loglog(res.t[1:], np.nanmean(res.loss[1:], axis=1) - land.global_minimum.value, color="grey", lw=0.8,
               ls="--")
    ax2.set_ylabel(r"$C - C_{min}$ (dashed)", color="grey")
    a.legend(loc="lower left", fontsize=7)
    b.loglog(r["step"][1:] * lr_n, snr_net[1:], color=col, label=f"SNR (lr = {lr_n:g}, B = {B_n})")
    b.axhline(1, color="k", ls=":", lw=1)
    b.set(xlabel="t = k lr", ylabel="SNR", title=f"MLP 64-32-10 on {m} digits")
    b2 = b.twinx()
    b2.loglog(r["step"][1:] * lr_n, tr.loss[1:, 0], color="grey", lw=0.8, ls="--")
    b2.set_ylabel("training loss (dashed)", color="grey")
    b.legend(loc="lower left", fontsize=7)
    caption = (f"logistic regression ({n} SGD runs, B = {B}): median SNR falls from {med[1]:.3g} to {med[-1]:.2g}, "
               f"{_crossing(res.t, med)}; MLP on digits (B = {B_n}): SNR {snr_net[1]:.3g} -> "
               f"{snr_net[-1]:.2g}, {_crossing(r['step'] * lr_n, snr_net)}.")
    return save(fig, out_dir, NAME, caption)


def _crossing(t, snr):
    """When the SNR first falls below 1, or that it stays above 1 over the run."""
    below = np.flatnonzero(snr < 1)
    return f"below 1 from t = {t[below[0]]:.3g}" if below.size else f"above 1 throughout (t <= {t[-1]:.3g})"
