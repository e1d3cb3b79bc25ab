r"""Train a real network with the same GD/SGD specs the simulator runs, recording a trajectory.

The update is the one of :mod:`sdesim.dynamics.discrete` (``sgd_update`` at ``lookahead``),
on real minibatches: :math:`v_{k+1} = \mu v_k - lr_k\, g_B(w_k + \nu \mu v_k)`,
:math:`w_{k+1} = w_k + v_{k+1}` (``mu = 0``: plain SGD; ``nu = 1``: Nesterov), ``GD`` uses the
full training set. Time is ``t = k * lr`` (base ``lr``); the schedule gives :math:`lr_k = lr\, s(t_k)`.
Minibatches follow ``SGD.sampling`` (``"replacement"``, ``"shuffle"``, ``"fixed"``) and are
those of particle 0 of :class:`~sdesim.dynamics.sampling.Sampler`: the same as
``sd.simulate`` draws on a ``FiniteSumLoss`` with the same ``n``, ``B``, sampling and seed.
"""

from __future__ import annotations

import numpy as np

from sdesim.analysis.lanczos import lanczos
from sdesim.dynamics.discrete import GD, SGD, lookahead, nudged, sgd_update
from sdesim.dynamics.sampling import Sampler
from sdesim.errors import ConfigError, LossKindError, ShapeError
from sdesim.nets.data import Dataset
from sdesim.nets.mlp import MLP
from sdesim.result import Result

__all__ = ["train"]


def _schedule(every, steps):
    """Steps ``0, every, 2 every, ...`` and ``steps`` (empty for ``every <= 0``)."""
    if every <= 0:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.append(np.arange(0, steps + 1, every), steps)).astype(np.int64)


def train(net: MLP, data, dyn, steps, w0=None, record_every=100, stats_every=None, hessian_every=0,
          hessian_k=1, directions=None, w_ref=None, seed=0, init_seed=0) -> Result:
    r"""Run ``dyn`` (:class:`~sdesim.GD` or :class:`~sdesim.SGD`) on ``net`` for ``steps`` steps.

    Parameters
    ----------
    net : MLP
    data : Dataset or (Dataset, Dataset)
        Training set, or ``(train, test)`` to also record test accuracy.
    dyn : GD or SGD
        Learning rate, schedule, batch size, sampling, momentum (Nesterov),
        nudging (``nudge_k`` top Hessian directions, step scaled by
        ``nudge_factor``, directions refreshed at every Hessian record).
    steps : int
        Number of updates.
    w0 : array_like, shape (P,), optional
        Start; default ``net.init(init_seed)``.
    record_every : int
        Record the state and the full training loss at steps ``0, k, 2k, ...``
        and the final step (one forward pass over the training set each).
    stats_every : int, optional
        Gradient statistics and accuracies at multiples of this (and the final
        step); default ``record_every``, ``0``: never. Each costs a full-batch
        gradient and a per-sample backward pass.
    hessian_every : int
        Top-``hessian_k`` Hessian eigenvalues (Lanczos on full-batch HVPs) at
        multiples of this and the final step; ``0``: never. About 50 full-batch
        HVPs each.
    hessian_k : int
        Number of eigenvalues recorded.
    directions : array_like, shape (P, m), optional
        Record coordinates ``u = (w - w_ref) V`` (``V = directions``, e.g.
        ``Extraction.basis``) instead of the weights: the state of the extracted
        ``m``-dimensional model, so the result lines up with a simulation of it.
    w_ref : array_like, shape (P,), optional
        Origin of the coordinates (e.g. ``Extraction.w_star``); default ``w0``.
    seed : int
        Seed of the minibatch draws: ``Sampler(dyn.sampling, n, B, seed).indices(k, [0])``
        at step ``k``, as particle 0 of ``sd.simulate`` with this seed on a finite sum.
    init_seed : int
        Seed of ``net.init`` when ``w0`` is not given.

    Returns
    -------
    Result
        ``t (T,)`` = recorded ``k * lr``; ``w (T, 1, P)`` the weights, or
        ``(T, 1, m)`` the coordinates when ``directions`` is given; ``loss (T, 1)``
        the full training loss; ``diverged_at (1,)`` (first step with non-finite
        weights; later records NaN). ``reduced["net"]``: ``step (T,)``;
        ``stats_step (S,)`` with ``grad_norm`` (``|grad C|``), ``noise_trace``
        (``tr Sigma_1``), ``grad_snr`` (``|grad C|^2 / E|g_B - grad C|^2 =
        |grad C|^2 B / (c tr Sigma_1)``, ``c = 1`` with replacement,
        ``(n - B)/(n - 1)`` without, as in :mod:`sdesim.analysis.snr`; ``inf``
        for GD), ``train_accuracy``, ``test_accuracy`` (NaN without a test set),
        all ``(S,)``; ``hessian_step (H,)``, ``hessian_t (H,)``,
        ``hessian_eigenvalues (H, hessian_k)`` when ``hessian_every > 0``.
    """
    train_set, test_set = (data, None) if isinstance(data, Dataset) else data
    if train_set.n_features != net.sizes[0] or train_set.n_classes != net.sizes[-1]:
        raise ShapeError(f"data set {train_set.name!r} has d = {train_set.n_features}, {train_set.n_classes} "
                         f"classes but the net {net.sizes} expects d = {net.sizes[0]}, {net.sizes[-1]} outputs")
    if not isinstance(dyn, (GD, SGD)):
        raise LossKindError(f"train runs GD or SGD on a real network, got {type(dyn).__name__}")
    if isinstance(dyn, SGD) and (dyn.noise_covariance is not None or dyn.noise_factor is not None):
        raise ConfigError("SGD.noise_covariance/noise_factor are for synthetic losses; a net's noise comes from its data")
    steps, record_every = int(steps), int(record_every)
    stats_every = record_every if stats_every is None else int(stats_every)
    if steps < 0 or record_every < 1:
        raise ConfigError(f"need steps >= 0 and record_every >= 1, got {steps}, {record_every}")
    x, y = train_set.x, train_set.y
    n = len(y)
    w = net.init(init_seed) if w0 is None else np.array(w0, dtype=float)
    net._unpack(w)
    w_ref = w.copy() if w_ref is None else np.asarray(w_ref, dtype=float)
    D = None if directions is None else np.asarray(directions, dtype=float)
    if D is not None and (D.ndim != 2 or D.shape[0] != net.n_params):
        raise ShapeError(f"directions must have shape ({net.n_params}, m), got {D.shape}")
    is_sgd = isinstance(dyn, SGD)
    mu = dyn.momentum if is_sgd else 0.0
    nesterov = is_sgd and dyn.nesterov
    nudge_k = dyn.nudge_k if is_sgd else 0
    if nudge_k and hessian_every <= 0:
        raise ConfigError("nudged SGD needs hessian_every > 0 to refresh its Hessian directions")
    sampler = Sampler(dyn.sampling, n, dyn.batch_size, seed) if is_sgd else None
    memo = {}  # the sampler's current epoch order
    if is_sgd:
        B = dyn.batch_size
        noise_per_trace = (1.0 if dyn.sampling == "replacement" else (n - B) / max(n - 1, 1)) / B
    else:
        noise_per_trace = 0.0

    record_steps = _schedule(record_every, steps)
    stats_steps = _schedule(stats_every, steps)
    hessian_steps = _schedule(hessian_every, steps)
    dim = net.n_params if D is None else D.shape[1]
    states = np.full((len(record_steps), dim), np.nan)
    losses = np.full(len(record_steps), np.nan)
    stats = {key: np.full(len(stats_steps), np.nan)
             for key in ("grad_norm", "noise_trace", "grad_snr", "train_accuracy", "test_accuracy")}
    eigenvalues = np.full((len(hessian_steps), hessian_k), np.nan)
    velocity = np.zeros_like(w)
    nudge_V = None

    @np.errstate(over="ignore", invalid="ignore")  # divergence is reported, not warned about
    def step(w, k):
        nonlocal velocity
        probe = lookahead(w, velocity, mu, nesterov)
        if is_sgd:
            idx = sampler.indices(k, [0], memo)[0]
            g = net.grad(probe, x[idx], y[idx])
        else:
            g = net.grad(probe, x, y)
        if nudge_k:
            g = nudged(g, nudge_V, dyn.nudge_factor)
        w, velocity = sgd_update(w, velocity, g, float(dyn.lr_at(k * dyn.lr)), mu)
        return w

    def record_stats(i):
        g = net.grad(w, x, y)
        trace = net.sample_jacobian(w, x, y).covariance_trace()
        g2 = float(g @ g)
        noise = noise_per_trace * trace
        stats["grad_norm"][i] = np.sqrt(g2)
        stats["noise_trace"][i] = trace
        stats["grad_snr"][i] = g2 / noise if noise > 0 else np.inf
        stats["train_accuracy"][i] = net.accuracy(w, x, y)
        if test_set is not None:
            stats["test_accuracy"][i] = net.accuracy(w, test_set.x, test_set.y)

    def record_hessian(i, k):
        vals, vecs = lanczos(lambda v: net.hvp(w, x, y, v), net.n_params, max(hessian_k, nudge_k),
                             tol=1e-6, seed=k)
        eigenvalues[i] = vals[:hessian_k]
        return vecs[:, :nudge_k]

    diverged_at = -1
    i_rec = i_stats = i_hes = 0
    for k in range(steps + 1):
        if i_rec < len(record_steps) and record_steps[i_rec] == k:
            states[i_rec] = w if D is None else (w - w_ref) @ D
            losses[i_rec] = net.loss(w, x, y)
            i_rec += 1
        if i_stats < len(stats_steps) and stats_steps[i_stats] == k:
            record_stats(i_stats)
            i_stats += 1
        if i_hes < len(hessian_steps) and hessian_steps[i_hes] == k:
            nudge_V = record_hessian(i_hes, k)
            i_hes += 1
        if k == steps:
            break
        w = step(w, k)
        if not np.all(np.isfinite(w)):
            diverged_at = k + 1
            break

    reduced = {"step": record_steps, "stats_step": stats_steps, **stats}
    if hessian_every > 0:
        reduced.update(hessian_step=hessian_steps, hessian_t=hessian_steps * dyn.lr,
                       hessian_eigenvalues=eigenvalues)
    metadata = {
        "source": "sdesim.nets.train",
        "label": f"{dyn.label} on {net.sizes}",
        "state": "weights" if D is None else "coordinates (w - w_ref) @ directions",
        "net": {"sizes": list(net.sizes), "activation": net.activation, "loss": net.loss_name,
                "weight_decay": net.weight_decay, "n_params": net.n_params},
        "data": {"train": train_set.name, "n": n, "test": None if test_set is None else test_set.name},
        "dynamic": dyn.describe(),
        "steps": steps, "record_every": record_every, "stats_every": stats_every,
        "hessian_every": int(hessian_every), "hessian_k": int(hessian_k),
        "seed": int(seed), "init_seed": int(init_seed) if w0 is None else None,
    }
    return Result(t=record_steps * dyn.lr, w=states[:, None, :], loss=losses[:, None], metadata=metadata,
                  diverged_at=np.array([diverged_at]), reduced={"net": reduced})
