"""What :func:`~sdesim.nets.theory.net_vs_theory` reports: the per-direction table, the quadratic
model's validity check, the GD sharpness series; their JSON file and terminal table.

Variances are of the model coordinates ``u_j = v_j^T (w - w*)`` along the top Hessian
eigenvectors ``v_j``; a ratio is measured over predicted.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["DirectionRow", "EdgeOfStability", "NetTheoryReport", "QuadraticCheck", "format_report",
           "write_json"]


@dataclass(frozen=True)
class DirectionRow:
    """One top Hessian eigendirection ``v_j`` of the table.

    Variances are of ``u_j = v_j^T (w - w*)``; ``*_se`` are standard errors from
    batch means (real net: one trajectory cut in time blocks; simulation:
    particles). Ratios are measured over predicted; their standard errors are the
    variance's relative standard error (the predictions are exact).
    """

    j: int
    h: float
    lr_h: float
    discrete: float
    sde: float
    real: float
    real_se: float
    simulated: float
    simulated_se: float

    @property
    def sde_factor(self) -> float:
        """Theory's discrete/SDE ratio ``2 / (2 - lr h)`` (1D; exact when ``S`` is diagonal)."""
        return 2.0 / (2.0 - self.lr_h)

    def ratios(self) -> dict:
        """``{real,simulated}_over_{discrete,sde}`` with ``_se`` companions."""
        out = {}
        for what in ("real", "simulated"):
            var, se = getattr(self, what), getattr(self, f"{what}_se")
            for kind in ("discrete", "sde"):
                pred = getattr(self, kind)
                out[f"{what}_over_{kind}"] = var / pred
                out[f"{what}_over_{kind}_se"] = se / pred
        return out


@dataclass(frozen=True)
class QuadraticCheck:
    r"""Is the real run inside the quadratic model's validity region?

    At ``n`` snapshots ``w`` of the real run (after the burn-in): ``measured =
    C(w) - C(w*)`` against its second-order Taylor value ``quadratic = g^T d +
    1/2 d^T H d`` (``d = w - w*``, exact full-batch HVP), and the part the top-``k``
    model carries, ``model = 1/2 sum_j h_j u_j^2`` (means over the snapshots).
    The model also assumes constant curvature and noise: ``curvature[j]`` is the
    mean over the snapshots of ``v_j^T H(w) v_j / h_j`` and ``noise[j]`` of
    ``v_j^T Sigma_1(w) v_j / S_jj``, for the table's directions, with standard
    errors over the snapshots (``*_se``; they are spaced far beyond the
    correlation time). Both are 1 where the model holds; a stationary variance
    moves roughly with ``noise / curvature``. On real nets ``Sigma_1`` grows with
    the spread of the per-sample Hessians times the fluctuation ``d``, so
    ``noise`` is the first to leave 1 as ``lr`` grows.
    """

    n: int
    measured: float
    quadratic: float
    model: float
    curvature: tuple[float, ...] = ()
    curvature_se: tuple[float, ...] = ()
    noise: tuple[float, ...] = ()
    noise_se: tuple[float, ...] = ()

    @property
    def ratio(self) -> float:
        """``measured / quadratic``: 1 inside the quadratic region."""
        return self.measured / self.quadratic


@dataclass(frozen=True)
class EdgeOfStability:
    """Full-batch GD from initialisation: top Hessian eigenvalue against ``2 / lr``.

    ``step``, ``sharpness``, ``loss`` are ``(H,)`` arrays at the Hessian records
    (Lanczos on full-batch HVPs); ``setup`` describes the net and data.
    """

    lr: float
    steps: int
    step: np.ndarray
    sharpness: np.ndarray
    loss: np.ndarray
    setup: dict

    @property
    def threshold(self) -> float:
        """Linear stability limit ``2 / lr``."""
        return 2.0 / self.lr

    def summary(self) -> dict:
        """Initial sharpness, range over the second half, and the ratio of its mean to ``2 / lr``."""
        late = self.sharpness[len(self.sharpness) // 2:]
        return {"initial": float(self.sharpness[0]), "late_min": float(late.min()),
                "late_max": float(late.max()), "late_mean_over_threshold": float(late.mean() / self.threshold),
                "loss_initial": float(self.loss[0]), "loss_final": float(self.loss[-1])}


@dataclass(frozen=True)
class NetTheoryReport:
    """What :func:`net_vs_theory` measured. ``rows`` is the table (one per direction);
    ``settings`` the run's parameters; ``warnings`` the validity messages issued;
    ``json_path``/``figure_path`` the files written (``None`` without ``out``)."""

    model: str
    lr: float
    batch_size: int
    rows: tuple[DirectionRow, ...]
    quadratic: QuadraticCheck | None
    gd: EdgeOfStability | None
    settings: dict
    warnings: tuple[str, ...] = ()
    timings: dict = field(default_factory=dict)
    json_path: Path | None = None
    figure_path: Path | None = None

    def to_dict(self) -> dict:
        """JSON-serialisable form (what the JSON file holds)."""
        rows = [{**asdict(r), "sde_factor": r.sde_factor, **r.ratios()} for r in self.rows]
        quad = None if self.quadratic is None else {**asdict(self.quadratic), "ratio": self.quadratic.ratio}
        gd = None
        if self.gd is not None:
            gd = {"lr": self.gd.lr, "threshold": self.gd.threshold, "steps": self.gd.steps,
                  "step": self.gd.step.tolist(), "sharpness": self.gd.sharpness.tolist(),
                  "loss": self.gd.loss.tolist(), "setup": self.gd.setup, "summary": self.gd.summary()}
        return {"format": "sdesim.NetTheoryReport", "format_version": 1, "model": self.model,
                "lr": self.lr, "batch_size": self.batch_size, "settings": self.settings, "rows": rows,
                "quadratic": quad, "gd": gd, "warnings": list(self.warnings), "timings": self.timings,
                "figure": None if self.figure_path is None else str(self.figure_path)}


def write_json(report: NetTheoryReport, path) -> Path:
    """Write ``report.to_dict()`` to ``path`` atomically, as strict JSON."""
    path = Path(path)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_finite_or_none(report.to_dict()), indent=2))
    tmp.replace(path)
    return path


def _finite_or_none(obj):
    """Strict JSON: NaN and infinities (skipped predictions, divergence) become ``null``."""
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_none(v) for v in obj]
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def format_report(report: NetTheoryReport) -> str:
    """The terminal table: per direction, predictions and measured/predicted ratios (+- 1 s.e.)."""
    lines = [(f"{report.model}: real SGD (lr = {report.lr:.4g}, B = {report.batch_size}, "
             f"lr*h_1 = {report.settings['lr_h1']:.3g}, {report.settings['steps']} steps) and SGD simulated on the "
             f"extracted model ({report.settings['n_particles']} particles) against the stationary variances of "
             "discrete SGD (discrete Lyapunov) and of the SDE (continuous Lyapunov)"),
             (f"{'j':>3} {'h_j':>8} {'lr*h':>6} {'discrete':>10} {'SDE':>10} {'2/(2-lr h)':>10} "
             f"{'real/disc':>14} {'real/SDE':>14} {'sim/disc':>14} {'sim/SDE':>14}")]
    for r in report.rows:
        q = r.ratios()
        cells = " ".join(f"{q[key]:.3f}+-{q[key + '_se']:.3f}".rjust(14) for key in (
            "real_over_discrete", "real_over_sde", "simulated_over_discrete", "simulated_over_sde"))
        lines.append(f"{r.j:>3} {r.h:8.4g} {r.lr_h:6.3f} {r.discrete:10.3e} {r.sde:10.3e} {r.sde_factor:10.3f} "
                     + cells)
    if report.quadratic is not None:
        q = report.quadratic
        lines.append(f"loss increase along real SGD: measured {q.measured:.4g}, quadratic {q.quadratic:.4g} "
                     f"(ratio {q.ratio:.3f}), top-k model part {q.model:.4g}")
        if q.curvature:
            pm = lambda a, b: " ".join(f"{x:.3f}+-{e:.3f}" for x, e in zip(a, b))
            lines.append(f"along real SGD / at w* (j = 1..{len(q.curvature)}): curvature v^T H v "
                         f"{pm(q.curvature, q.curvature_se)}")
            lines.append(f"{'':>35}noise v^T Sigma_1 v {pm(q.noise, q.noise_se)}")
    if report.gd is not None:
        s = report.gd.summary()
        lines.append(f"full-batch GD ({report.gd.setup['loss']} loss, {report.gd.setup['data']}, lr = {report.gd.lr:.4g}, "
                     f"2/lr = {report.gd.threshold:.4g}): sharpness {s['initial']:.3g} at init, "
                     f"{s['late_min']:.3g}-{s['late_max']:.3g} over the second half "
                     f"({s['late_mean_over_threshold']:.3f} x 2/lr); loss {s['loss_initial']:.3g} -> {s['loss_final']:.3g}")
    for w in report.warnings:
        lines.append(f"warning: {w}")
    if report.json_path is not None:
        lines.append(f"wrote {report.json_path}" + (f" and {report.figure_path}" if report.figure_path else ""))
    return "\n".join(lines)
