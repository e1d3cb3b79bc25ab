"""The NumPy backend: the readable reference every faster backend is tested against.

Each step is vectorised over particles, in blocks of :data:`ROWS` particles (which bounds
the temporaries of a step; every random number is keyed by its particle, so blocks
change no number); the loops over steps and blocks are in Python. It runs
every plan: discrete updates (:func:`sdesim.dynamics.discrete.sgd_update`, minibatches
from the plan's :class:`~sdesim.dynamics.sampling.Sampler`), SDE steps by the plan's
integrator, and flows by adaptive Dormand-Prince between recording times or by fixed RK4 steps.
"""

from __future__ import annotations

import numpy as np

from sdesim import rng
from sdesim.backends.base import Backend, State, Support
from sdesim.dynamics.discrete import lookahead, nudged, sgd_update

ROWS = 1 << 16
"""Particles per block of a step (SDE and discrete steps; a flow's adaptive step takes the whole ensemble)."""


def gaussians(seed, k, first, n, r):
    """Standard normals ``(n, r)`` of step ``k`` for particles ``first..first+n``: counters ``k * n_pairs + j``."""
    m = (r + 1) // 2
    streams = np.arange(first, first + n, dtype=np.uint64)
    cols = []
    for j in range(m):
        z0, z1 = rng.normal_pairs(seed, streams, np.uint64(k * m + j))
        cols += [z0, z1]
    return np.stack(cols, axis=1)[:, :r] if r else np.zeros((n, 0))


def stochastic_gradient(plan, rows, first, W, k, t, alive):
    r""":math:`g_B(w)` for the alive particles at step ``k`` of the block ``rows`` from particle ``first``."""
    loss = plan.loss
    n = len(rows.W)
    if plan.sampler is not None:
        idx = plan.sampler.indices(k, np.arange(first, first + n), rows.scratch)
        return loss.minibatch_grad(W, idx[alive])
    if plan.noise is None:
        return loss.grad(W, t)
    G = plan.noise.factor_at(loss, W, t)
    Z = gaussians(plan.seed, k, first, n, plan.n_normals)[alive]
    noise = Z @ G.T if G.ndim == 2 else np.einsum("nij,nj->ni", G, Z)
    return loss.grad(W, t) + noise / np.sqrt(plan.batch_size)


def nudge(plan, W, g, t):
    """Scale the step along the top ``nudge_k`` Hessian eigendirections by ``nudge_factor``."""
    k, factor = plan.nudge
    _, U = np.linalg.eigh(plan.loss.hessian(W, t))
    return nudged(g, U[..., -k:], factor)


def discrete_step(plan, rows, first, k, alive):
    t = k * plan.dt
    lr = float(plan.lr_at(k))
    W = rows.W[alive]
    V = None if rows.V is None else rows.V[alive]           # None: no momentum
    look = lookahead(W, V, plan.momentum, plan.lookahead != 0.0)
    g = stochastic_gradient(plan, rows, first, look, k, t, alive)
    if plan.nudge[0]:
        g = nudge(plan, look, g, t)
    W, V = sgd_update(W, V, g, lr, plan.momentum)
    if V is not None:
        rows.V[alive] = V
    return W


def sde_step(plan, rows, first, k, alive):
    Z = gaussians(plan.seed, k, first, len(rows.W), plan.n_normals)[alive]
    return plan.integrator.step(plan.sde, rows.W[alive], k * plan.dt, plan.dt, Z)


def flow_step(plan, rows, first, k, alive):
    """One fixed step of a flow (RK4) for the alive particles: ``plan.drift`` is its field."""
    return plan.integrator.step(plan.drift, rows.W[alive], k * plan.dt, plan.dt)


def blocks(state, n_particles):
    """``(first, rows)``: the state of particles ``first..first+ROWS`` as views (``rows.scratch``: its own)."""
    for first in range(0, n_particles, ROWS):
        part = slice(first, first + ROWS)
        yield first, State(W=state.W[part], V=None if state.V is None else state.V[part],
                           diverged_at=state.diverged_at[part], scratch=state.scratch.setdefault(("rows", first), {}))


def advance_flow(plan, state, k0, k1, record):
    """Flows: fixed steps ``t = k dt`` (RK4), or adaptive Dormand-Prince between recording times."""
    if plan.integrator.fixed_step:
        return advance_steps(plan, state, k0, k1, record, flow_step)
    wanted = sorted(k for k in record if k0 <= k < k1)
    records = np.empty((len(wanted), plan.n_particles, plan.dim))
    stops = sorted(set(wanted) | {k1})
    k = k0
    for stop in stops:
        alive = state.diverged_at < 0
        if stop > k and alive.any():
            W, state.scratch["h"], t_stop = plan.integrator.integrate(
                plan.drift, state.W[alive], k * plan.dt, stop * plan.dt, state.scratch.get("h"), bound=plan.bound)
            state.W[alive] = W
            # a particle stopped at t diverged at the first step after the start k with k * dt >= t
            stopped = np.flatnonzero(alive)[np.isfinite(t_stop)]
            state.diverged_at[stopped] = np.maximum(
                k + 1, np.ceil(t_stop[np.isfinite(t_stop)] / plan.dt - 1e-9).astype(np.int64))
            mark_divergence(plan, state, stop)
        k = stop
        if stop in record and stop < k1:
            records[wanted.index(stop)] = state.W
    return records


def advance_steps(plan, state, k0, k1, record, step):
    """Fixed steps ``k0..k1`` by ``step(plan, rows, first, k, alive)``, block by block; records before step ``k``."""
    records = np.empty((sum(k0 <= k < k1 for k in record), plan.n_particles, plan.dim))
    i = 0
    for k in range(k0, k1):
        if k in record:
            records[i] = state.W
            i += 1
        for first, rows in blocks(state, plan.n_particles):
            alive = rows.diverged_at < 0
            if alive.any():
                rows.W[alive] = step(plan, rows, first, k, alive)
                mark_divergence(plan, rows, k + 1)
    return records


def mark_divergence(plan, state, k):
    """Stop particles whose state is non-finite or beyond ``bound``: NaN from step ``k`` on."""
    bad = (state.diverged_at < 0) & ~(np.abs(state.W) <= plan.bound).all(axis=1)
    if bad.any():
        state.diverged_at[bad] = k
        state.W[bad] = np.nan


FLOAT64_ONLY = "float32 runs on the cupy backend only"
"""Why the CPU backends refuse ``dtype="float32"``."""


class NumpyBackend(Backend):
    """The reference: runs every plan."""

    name = "numpy"

    def support(self, plan) -> Support:
        if plan.dtype != "float64":
            return Support("unsupported", FLOAT64_ONLY)
        return Support("reference")

    def advance(self, plan, state, k0, k1, record):
        record = set(int(r) for r in record)
        if plan.family == "flow":
            return advance_flow(plan, state, k0, k1, record)
        return advance_steps(plan, state, k0, k1, record, discrete_step if plan.family == "discrete" else sde_step)


backend = NumpyBackend()
