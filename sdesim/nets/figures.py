"""Figures of :func:`~sdesim.nets.theory.net_vs_theory`: measured/predicted stationary variance
against ``lr h_j`` with the theory curve ``2 / (2 - lr h)``, and the GD sharpness against ``2 / lr``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sdesim.nets.report import NetTheoryReport

__all__ = ["plot_report", "plot_sweep"]


def plot_report(report: NetTheoryReport, path) -> Path:
    """One run: measured/predicted per direction against ``lr h_j`` (real net and simulated model,
    over discrete (filled) and SDE (open)) and, with a GD run, its sharpness against ``2 / lr``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sdesim.plot import diagrams, style

    style.use()
    ncols = 2 if report.gd is not None else 1
    fig, axes = plt.subplots(1, ncols, figsize=(5.2 * ncols, 3.8), squeeze=False)
    ax = axes[0, 0]
    lr_h = np.array([r.lr_h for r in report.rows])
    for key, label, colour, marker, shift in (
            ("real_over_discrete", "real net / discrete", style.OKABE_ITO[1], "o", -1.5),
            ("real_over_sde", "real net / SDE", style.OKABE_ITO[1], "s", -0.5),
            ("simulated_over_discrete", "simulated model / discrete", style.OKABE_ITO[0], "o", 0.5),
            ("simulated_over_sde", "simulated model / SDE", style.OKABE_ITO[0], "s", 1.5)):
        vals = np.array([r.ratios()[key] for r in report.rows])
        errs = np.array([r.ratios()[key + "_se"] for r in report.rows])
        face = colour if "discrete" in key else "white"
        ax.errorbar(lr_h * (1 + 0.004 * shift), vals, yerr=errs, fmt=marker, color=colour, mfc=face,
                    capsize=2, label=label)
    grid = np.linspace(0, max(lr_h.max() * 1.1, 1e-3), 100)
    ax.plot(grid, 2 / (2 - grid), "k--", lw=1, label="theory discrete / SDE = 2 / (2 - lr h)")
    ax.axhline(1.0, color="k", lw=0.6)
    ax.set(xlabel=r"$lr\, h_j$ (top Hessian directions)", ylabel="stationary variance: measured / predicted",
           title=f"{report.model}, lr = {report.lr:.3g}, B = {report.batch_size}")
    ax.legend(fontsize=7)
    if report.gd is not None:
        gd = report.gd
        diagrams.sharpness(gd.step * gd.lr, gd.sharpness, gd.lr, ax=axes[0, 1], label="top Hessian eigenvalue")
        axes[0, 1].set_title(f"full-batch GD from init ({gd.setup['loss']} loss, {gd.setup['data']})")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_sweep(reports, path) -> Path:
    """Measured/predicted stationary variance against ``lr h_j`` over several runs (e.g. a sweep of
    ``lr_h1``): real net over discrete (filled) and over SDE (open), one colour per run, with the
    theory curve ``2 / (2 - lr h)`` that the SDE misses by."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sdesim.plot import style

    style.use()
    fig, ax = plt.subplots(figsize=(5.6, 4.0))
    top = 0.0
    for i, rep in enumerate(reports):
        colour = style.OKABE_ITO[i % len(style.OKABE_ITO)]
        lr_h = np.array([r.lr_h for r in rep.rows])
        top = max(top, lr_h.max())
        for key, face, label in (("real_over_discrete", colour, "real / discrete"),
                                 ("real_over_sde", "white", "real / SDE")):
            vals = np.array([r.ratios()[key] for r in rep.rows])
            errs = np.array([r.ratios()[key + "_se"] for r in rep.rows])
            ax.errorbar(lr_h, vals, yerr=errs, fmt="o", color=colour, mfc=face, ms=4, capsize=1.5,
                        label=f"lr h_1 = {rep.settings['lr_h1']:.3g}: {label}")
    grid = np.linspace(0, min(top * 1.02, 1.95), 200)
    ax.plot(grid, 2 / (2 - grid), "k--", lw=1, label="discrete / SDE theory 2 / (2 - lr h)")
    ax.axhline(1.0, color="k", lw=0.6)
    ax.set(xlabel=r"$lr\, h_j$", ylabel="stationary variance: real net / predicted", yscale="log",
           title=f"{reports[0].model}, B = {reports[0].batch_size}: where the predictions leave the real net")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
