r"""The main job on built-in defaults: one loss, one ``lr`` and ``B``, every lens.

On the catalog's ``double_well_2d``, :math:`C = (x^2-1)^2 + 2y^2 + \tfrac12 xy`,
it runs GD, SGD (Gaussian per-sample noise, :math:`\Sigma_1 = I`), gradient
flow, the first-order modified flow and the SGD diffusion at temperature
:math:`T = lr / 2B`, all from the same start on the clock ``t = k * lr``, and
writes a figure, the results and a JSON summary.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def run(out="out/demo", lr=0.1, batch_size=1, n_particles=4000, t_end=6.0, w0=(-1.6, 1.2),
        backend="numba", seed=0) -> dict:
    """Run the demo; return the summary written to ``out/summary.json``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import sdesim as sd
    from sdesim import plot

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    land = sd.catalog.double_well_2d()
    loss = land.loss
    dynamics = [sd.GD(lr), sd.SGD(lr, batch_size), sd.GradientFlow(), sd.ModifiedFlow(lr, order=1),
                sd.SGDDiffusion(lr, batch_size)]
    counts = [n_particles if isinstance(d, (sd.SGD, sd.SGDDiffusion)) else 1 for d in dynamics]
    backends = [lens_backend(loss, d, n, t_end, backend) for d, n in zip(dynamics, counts)]
    results = [sd.simulate(loss, d, w0, n, t_end=t_end, record_every=1, backend=b, seed=seed)
               for d, n, b in zip(dynamics, counts, backends)]
    temperature = dynamics[-1].temperature()

    plot.use()
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    plot.trajectories(loss, results, bounds=[(-2.0, 2.0), (-1.5, 1.5)], ax=axes[0])
    axes[0].set_title(f"five lenses, lr = {lr:g}, B = {batch_size}, T = lr/2B = {temperature:g}")
    plot.loss_curves(results, ax=axes[1], offset=land.global_minimum.value)
    axes[1].set(yscale="log", ylim=(1e-4, None), ylabel=r"$C - C_{min}$", title="excess loss against t = k lr")
    _marginals(loss, results, temperature, axes[2])
    fig.tight_layout()
    figure = out / "demo.png"
    fig.savefig(figure)
    plt.close(fig)

    summary = {"loss": str(loss.expr), "lr": lr, "batch_size": batch_size, "temperature": temperature,
               "t_end": t_end, "n_particles": n_particles, "backend": backend, "figure": str(figure),
               "lenses": {}}
    gd_final = results[0].final[0]
    for res in results:
        name = res.label
        res.save(out / f"{name.split(' (')[0].replace(' ', '_').replace(',', '')}.npz")
        final = res.final[~res.diverged]
        summary["lenses"][name] = {
            "final_mean": final.mean(axis=0).tolist(),
            "final_std": final.std(axis=0).tolist(),
            "final_loss_mean": float(np.nanmean(res.loss[-1])),
            "distance_to_GD": float(np.linalg.norm(final.mean(axis=0) - gd_final)),
            "backend": res.metadata["backend"],
        }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def lens_backend(loss, dynamic, n_particles, t_end, backend) -> str:
    """``backend`` where it runs the lens; else ``"numba"`` (a GPU backend has no adaptive flow step).

    An unknown or unavailable ``backend`` raises (:func:`sdesim.backends.get_backend`).
    """
    from sdesim.backends import get_backend
    from sdesim.plan import resolve
    plan = resolve(loss, dynamic, n_particles, t_end=t_end)
    return backend if get_backend(backend).support(plan).level != "unsupported" else "numba"


def _marginals(loss, results, temperature, ax):
    """Final x-marginals of SGD and the SDE against the Gibbs density of the left basin."""
    from sdesim.plot.style import colour_for
    x = np.linspace(-2.0, 0.0, 400)
    y = np.linspace(-1.5, 1.5, 400)
    X, Y = np.meshgrid(x, y, indexing="ij")
    C = loss.value(np.stack([X, Y], axis=-1))
    rho = np.exp(-(C - C.min()) / temperature).sum(axis=1)
    rho /= rho.sum() * (x[1] - x[0])
    for i, res in enumerate(results):
        if res.n_particles > 1:
            ax.hist(res.final[:, 0], bins=60, range=(-1.6, -0.4), density=True, histtype="step",
                    color=colour_for(res.label, i), label=res.label)
    ax.plot(x, rho, color="k", ls=":", label=r"Gibbs $e^{-C/T}$ (left basin)")
    h = loss.hessian(results[0].final[0])[0, 0]
    lr = results[0].metadata["dynamic"]["lr"]
    ax.set(xlim=(-1.6, -0.4), xlabel="x at t_end", ylabel="density",
           title=f"stationary spread: SGD is wider than the SDE (lr h = {lr * h:.2f})")
    ax.legend()


def format_summary(summary: dict) -> str:
    """A small table of the lenses' final states."""
    lines = [f"loss {summary['loss']}, lr = {summary['lr']}, B = {summary['batch_size']}, "
             f"T = lr/2B = {summary['temperature']:g}, t_end = {summary['t_end']}",
             f"{'lens':42s} {'mean x':>8s} {'mean y':>8s} {'std x':>8s} {'loss':>9s} {'|mean - GD|':>11s}"]
    for name, s in summary["lenses"].items():
        lines.append(f"{name:42s} {s['final_mean'][0]:8.4f} {s['final_mean'][1]:8.4f} "
                     f"{s['final_std'][0]:8.4f} {s['final_loss_mean']:9.5f} {s['distance_to_GD']:11.2e}"
                     f"  ({s['backend']})")
    lines.append(f"figure: {summary['figure']}")
    return "\n".join(lines)
