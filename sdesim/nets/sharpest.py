r"""The sharpest directions along SGD (Jastrzebski et al. 2019): on a real network trained from
initialisation, the top Hessian eigenpairs :math:`(h_j, v_j)` (Lanczos on exact full-batch
Hessian-vector products) every ``hessian_every`` steps, over a grid of ``(lr, B)``, and the
paper's three claims against what is measured:

(a) the sharpness :math:`h_1` first rises to a peak, and the peak is lower for larger ``lr`` and
    smaller ``B`` (larger ``lr / B``);
(b) the SGD step overshoots the minimum along the sharpest directions: along :math:`v_j` the loss
    is :math:`C(w) + s\, g_j + h_j s^2 / 2` to second order (:math:`g_j = \nabla C \cdot v_j`), with
    its minimum at :math:`s^*_j = -g_j / h_j`; the step moves :math:`\Delta_j = (w_{k+1} - w_k)\cdot v_j
    = -lr\, g_{B,j}` along it, and the ratio :math:`\Delta_j / s^*_j` (:math:`= lr\, h_j` for a
    full-batch step) is above 1 when the step overshoots, above 2 when it raises the loss along
    :math:`v_j`;
(c) nudged SGD (the step along the top-``k`` directions scaled by ``nudge_factor < 1``,
    :func:`~sdesim.dynamics.discrete.nudged`) trains faster and ends in a sharper region.

The SGD loop is :func:`sdesim.nets.train`'s (same minibatches for the same seed, same
``sgd_update``, same Lanczos calls: bit-identical weights on an MLP), written on an
:class:`~sdesim.nets.objective.Objective` so it runs on PyTorch models too, and recording the
step's projections. ``sd.sweep`` is not used: it runs ``sd.simulate`` on synthetic losses at
each grid point, not a function of a real net; the grid is a plain loop over its few points.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sdesim.analysis.lanczos import lanczos
from sdesim.dynamics.discrete import SGD, nudged, sgd_update
from sdesim.dynamics.sampling import Sampler
from sdesim.errors import ConfigError, NonFiniteError, ShapeError
from sdesim.nets.objective import Objective
from sdesim.nets.report import _finite_or_none
from sdesim.nets.theory import _blas_one_thread

__all__ = ["SharpestDirections", "SharpestRun", "format_sharpest", "sgd_sharpest", "sharpest_directions"]


@dataclass(frozen=True)
class SharpestRun:
    """One SGD run with its top-``k`` Hessian eigenpairs every ``hessian_every`` steps.

    Attributes
    ----------
    lr, batch_size, nudge_k, nudge_factor
    step : (H,) int array
        Steps at which the Hessian was taken.
    eigenvalues : (H, k) array
        :math:`h_j(w_k)`, largest first.
    loss : (H,) array
        Full training loss.
    grad_projection : (H, k) array
        Full-batch :math:`g_j = \\nabla C(w_k) \\cdot v_j`.
    batch_projection : (H, k) array
        The minibatch gradient's :math:`g_{B,j} = g_B \\cdot v_j` (before nudging; NaN at the last step).
    step_projection : (H, k) array
        :math:`\\Delta_j = (w_{k+1} - w_k) \\cdot v_j` (NaN at the last step).
    diverged_at : int
        First step with non-finite weights, ``-1`` if none.
    """

    lr: float
    batch_size: int
    nudge_k: int
    nudge_factor: float
    step: np.ndarray
    eigenvalues: np.ndarray
    loss: np.ndarray
    grad_projection: np.ndarray
    batch_projection: np.ndarray
    step_projection: np.ndarray
    diverged_at: int = -1
    w_final: np.ndarray = field(default=None, repr=False)

    @property
    def overshoot(self) -> np.ndarray:
        r"""``(H, k)``: :math:`\Delta_j / s^*_j = -\Delta_j h_j / g_j` (step over distance to the 1D minimum)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return -self.step_projection * self.eigenvalues / self.grad_projection

    @property
    def peak(self) -> float:
        """Largest recorded sharpness :math:`\\max_k h_1(w_k)`."""
        return float(np.nanmax(self.eigenvalues[:, 0]))

    def late(self, values) -> float:
        """Mean of a per-record series over the last quarter of the records (at least one)."""
        values = np.asarray(values, dtype=float)
        return float(np.nanmean(values[-max(1, len(values) // 4):]))

    def to_dict(self) -> dict:
        keys = ("step", "eigenvalues", "loss", "grad_projection", "batch_projection", "step_projection")
        return {"lr": self.lr, "batch_size": self.batch_size, "nudge_k": self.nudge_k,
                "nudge_factor": self.nudge_factor, "diverged_at": self.diverged_at, "peak": self.peak,
                **{key: np.asarray(getattr(self, key)).tolist() for key in keys}}


def _hessian_steps(every, steps):
    """``0, every, 2 every, ...`` and ``steps`` for an int; else the given steps (sorted, with 0 and ``steps``)."""
    if np.ndim(every) == 0:
        if int(every) < 1:
            raise ConfigError(f"hessian_every must be >= 1, got {every}")
        return np.unique(np.append(np.arange(0, steps + 1, int(every)), steps))
    given = np.asarray(every)
    if given.ndim != 1 or given.size == 0 or given.min() < 0 or given.max() > steps or np.any(given != np.round(given)):
        raise ConfigError(f"hessian_every must be an int or integer steps in [0, {steps}], got {every}")
    return np.unique(np.concatenate([[0], given.astype(np.int64), [steps]]))


def sgd_sharpest(objective: Objective, w0, lr, batch_size, steps, hessian_every=25, k=3, nudge_k=0,
                 nudge_factor=1.0, seed=0, sampling="replacement") -> SharpestRun:
    """SGD (``SGD(lr, batch_size, sampling, nudge_k=..., nudge_factor=...)``) from ``w0`` for
    ``steps`` steps, with the top-``k`` Hessian eigenpairs and the step's projections on them at
    steps ``0, hessian_every, ...`` and ``steps`` (or at the steps listed in ``hessian_every``, with
    0 and ``steps``). Nudging uses the top ``nudge_k`` eigenvectors of
    the last Hessian record, as :func:`sdesim.nets.train` does."""
    if not isinstance(objective, Objective):
        raise ConfigError(f"objective must be an sdesim.nets.objective.Objective, got {type(objective).__name__}")
    dyn = SGD(lr, batch_size, sampling, nudge_k=nudge_k, nudge_factor=nudge_factor)
    steps, k = int(steps), int(k)
    if steps < 1 or not 1 <= k < objective.n_params:
        raise ConfigError(f"need steps >= 1 and 1 <= k < P = {objective.n_params}; got {steps}, {k}")
    record = _hessian_steps(hessian_every, steps)
    w = np.array(w0, dtype=float)
    if w.shape != (objective.n_params,):
        raise ShapeError(f"w0 has shape {w.shape}; the objective has {objective.n_params} parameters")
    if not np.all(np.isfinite(w)):
        raise NonFiniteError("w0 holds NaN or infinite weights")
    sampler, memo = Sampler(dyn.sampling, objective.n_samples, dyn.batch_size, seed), {}
    H = len(record)
    out = {key: np.full((H, k), np.nan) for key in ("eigenvalues", "grad_projection", "batch_projection",
                                                    "step_projection")}
    loss = np.full(H, np.nan)
    n_vecs = max(k, dyn.nudge_k)
    V = None
    i, diverged_at = 0, -1
    for step in range(steps + 1):
        at_record = i < H and record[i] == step
        if at_record:
            vals, V = lanczos(lambda v, w=w: objective.hvp(w, v), objective.n_params, n_vecs, tol=1e-6, seed=step)
            out["eigenvalues"][i] = vals[:k]
            out["grad_projection"][i] = objective.grad(w) @ V[:, :k]
            loss[i] = objective.loss(w)
        if step == steps:
            break
        with np.errstate(over="ignore", invalid="ignore"):
            g = objective.grad(w, sampler.indices(step, [0], memo)[0])
            move = nudged(g, V[:, :dyn.nudge_k], dyn.nudge_factor) if dyn.nudge_k else g
            w_next = sgd_update(w, None, move, float(dyn.lr_at(step * dyn.lr)))[0]
        if at_record:
            out["batch_projection"][i] = g @ V[:, :k]
            out["step_projection"][i] = (w_next - w) @ V[:, :k]
            i += 1
        w = w_next
        if not np.all(np.isfinite(w)):
            diverged_at = step + 1
            break
    return SharpestRun(float(lr), int(batch_size), int(dyn.nudge_k), float(dyn.nudge_factor), record, loss=loss,
                       diverged_at=diverged_at, w_final=w, **out)


@dataclass(frozen=True)
class SharpestDirections:
    """Runs over the ``(lr, B)`` grid, the nudged runs, and a verdict per claim.

    ``runs[(lr, B)]`` plain SGD, ``nudged[(lr, B)]`` nudged SGD; ``verdicts[claim]`` for
    ``claim`` in ``"a_peak"``, ``"b_overshoot"``, ``"c_nudged"``: ``{"paper", "measured", "holds"}``;
    ``numbers``: the measurements behind them.
    """

    runs: dict
    nudged: dict
    verdicts: dict
    numbers: dict
    setup: dict

    def to_dict(self) -> dict:
        """JSON-ready (strict: NaN, e.g. the last step's projections, becomes ``None``)."""
        return _finite_or_none({"setup": self.setup, "verdicts": self.verdicts, "numbers": self.numbers,
                                "runs": [r.to_dict() for r in self.runs.values()],
                                "nudged": [r.to_dict() for r in self.nudged.values()]})


def _claim_a(runs, lrs, bs):
    """Peaks rise above the start; ordered: lower for larger lr (fixed B) and smaller B (fixed lr)."""
    peak = np.array([[runs[lr, b].peak for b in bs] for lr in lrs])
    start = np.array([[runs[lr, b].eigenvalues[0, 0] for b in bs] for lr in lrs])
    rises = bool(np.all(peak > 1.05 * start))
    pairs = ordered = 0
    for i in range(len(lrs)):
        for j in range(len(bs)):
            for i2, j2 in ((i + 1, j), (i, j + 1)):
                if i2 < len(lrs) and j2 < len(bs):
                    pairs += 1
                    ordered += bool(peak[i2, j2] < peak[i, j]) if i2 > i else bool(peak[i2, j2] > peak[i, j])
    measured = (f"peak h_1 / h_1(0) = {np.round(peak / start, 2).tolist()} (rows lr = {list(lrs)}, columns "
                f"B = {list(bs)}); {ordered} of {pairs} neighbouring grid pairs ordered as claimed")
    return ({"paper": "the sharpness first rises to a peak, lower for larger lr and smaller B",
             "measured": measured, "holds": rises and ordered == pairs},
            {"peak": peak.tolist(), "initial": start.tolist(), "pairs_ordered": ordered, "pairs": pairs})


def _claim_b(runs):
    """Per run, over the records where the step moves towards the 1D minimum along v_1 (ratio > 0):
    the fraction that goes past it (ratio > 1); and the median lr h_1."""
    lr_h, past, ratio = {}, {}, {}
    for (lr, b), r in runs.items():
        key, o = f"{lr:g},{b}", r.overshoot[:-1]
        lr_h[key] = np.nanmedian(r.lr * r.eigenvalues[:-1], axis=0).tolist()
        towards = o > 0
        past[key] = [float(np.mean(o[towards[:, j], j] > 1)) if towards[:, j].any() else float("nan")
                     for j in range(o.shape[1])]
        ratio[key] = np.nanmedian(np.where(towards, o, np.nan), axis=0).tolist()
    p1 = np.array([v[0] for v in past.values()])
    measured = (f"of the steps moving towards the minimum along v_1, the fraction going past it: "
                f"{np.round(p1, 2).tolist()} over the grid (median step / distance "
                f"{np.round([v[0] for v in ratio.values()], 2).tolist()}; median lr h_1 "
                f"{np.round([v[0] for v in lr_h.values()], 2).tolist()})")
    return ({"paper": "the SGD step overshoots the minimum along the sharpest directions",
             "measured": measured, "holds": bool(np.all(p1 > 0.5))},
            {"median_lr_h": lr_h, "overshoot_fraction": past, "median_overshoot_towards": ratio})


def _claim_c(runs, nudged_runs):
    rows = {}
    for key, nr in nudged_runs.items():
        pr = runs[key]
        rows[f"{key[0]:g},{key[1]}"] = {"loss": [pr.loss[-1], nr.loss[-1]],
                                       "late_sharpness": [pr.late(pr.eigenvalues[:, 0]), nr.late(nr.eigenvalues[:, 0])]}
    faster = all(v["loss"][1] < v["loss"][0] for v in rows.values())
    sharper = all(v["late_sharpness"][1] > v["late_sharpness"][0] for v in rows.values())
    measured = "; ".join(f"(lr, B) = ({k}): final loss {v['loss'][0]:.4f} plain vs {v['loss'][1]:.4f} nudged, late "
                         f"sharpness {v['late_sharpness'][0]:.3g} vs {v['late_sharpness'][1]:.3g}"
                         for k, v in rows.items())
    return ({"paper": "nudged SGD (smaller step along the top directions) trains faster and ends sharper",
             "measured": measured, "holds": faster and sharper}, rows)


def sharpest_directions(objective: Objective, w0, lrs, batch_sizes, steps, hessian_every=25, k=3, nudge_k=None,
                        nudge_factor=0.1, nudge_at=None, seed=0, sampling="replacement") -> SharpestDirections:
    """Plain SGD from ``w0`` at every ``(lr, B)`` of ``lrs x batch_sizes`` (:func:`sgd_sharpest`), nudged
    SGD at the points ``nudge_at`` (default: the largest ``lr`` with the smallest ``B``), and the
    verdicts on claims (a)-(c) of the module docstring.

    Parameters
    ----------
    lrs, batch_sizes : sequences
        Increasing, at least two ``lr`` or two ``B`` (claim (a) compares neighbours).
    steps, hessian_every, k, seed, sampling
        As :func:`sgd_sharpest`, the same at every point (so every run sees the same minibatch
        stream for its ``B``). BLAS runs on one thread (threadpoolctl), much faster on these small
        matrices.
    nudge_k, nudge_factor
        Nudged runs: the step along the top ``nudge_k`` (default ``k``) directions times ``nudge_factor``.
    """
    lrs, bs = [float(v) for v in lrs], [int(v) for v in batch_sizes]
    if not lrs or not bs or len(lrs) * len(bs) < 2:
        raise ConfigError(f"need a grid of at least two (lr, B) points, got lrs = {lrs}, batch_sizes = {bs}")
    if list(np.unique(lrs)) != lrs or list(np.unique(bs)) != bs:
        raise ConfigError(f"lrs and batch_sizes must be increasing without repeats, got {lrs}, {bs}")
    nudge_k = int(k if nudge_k is None else nudge_k)
    nudge_at = [(max(lrs), min(bs))] if nudge_at is None else [(float(a), int(b)) for a, b in nudge_at]
    if not nudge_factor < 1 or nudge_k < 1:
        raise ConfigError(f"nudged SGD needs nudge_k >= 1 and nudge_factor < 1, got {nudge_k}, {nudge_factor}")
    if any(p not in {(a, b) for a in lrs for b in bs} for p in nudge_at):
        raise ConfigError(f"nudge_at {nudge_at} must be points of the grid")
    common = {"steps": steps, "hessian_every": hessian_every, "k": k, "seed": seed, "sampling": sampling}
    with _blas_one_thread():
        runs = {(lr, b): sgd_sharpest(objective, w0, lr, b, **common) for lr in lrs for b in bs}
        nudged_runs = {(lr, b): sgd_sharpest(objective, w0, lr, b, nudge_k=nudge_k, nudge_factor=nudge_factor,
                                             **common) for lr, b in nudge_at}
    bad = [key for key, r in {**runs, **nudged_runs}.items() if r.diverged_at >= 0]
    if bad:
        raise NonFiniteError(f"SGD diverged at (lr, B) = {bad}: lower the learning rates")
    verdicts, numbers = {}, {}
    for name, (verdict, nums) in (("a_peak", _claim_a(runs, lrs, bs)), ("b_overshoot", _claim_b(runs)),
                                  ("c_nudged", _claim_c(runs, nudged_runs))):
        verdicts[name], numbers[name] = verdict, nums
    setup = {"lrs": lrs, "batch_sizes": bs, "nudge_k": nudge_k, "nudge_factor": float(nudge_factor),
             "nudge_at": nudge_at, "n_params": int(objective.n_params), "n_samples": int(objective.n_samples),
             **common, "hessian_every": np.asarray(hessian_every).tolist()}
    return SharpestDirections(runs, nudged_runs, verdicts, numbers, setup)


def format_sharpest(res: SharpestDirections) -> str:
    """One line per claim: the paper's, the measurement, the verdict."""
    return "\n".join(f"({name[0]}) {v['paper']}: {'HOLDS' if v['holds'] else 'does not hold'}\n    {v['measured']}"
                     for name, v in res.verdicts.items())
