"""The NumPy backend: the readable reference every faster backend is tested against.

Each step is vectorised over particles; the loop over steps is in Python. It runs
every plan: discrete updates (:func:`sdesim.dynamics.discrete.sgd_update`, minibatches
from the plan's :class:`~sdesim.dynamics.sampling.Sampler`), SDE steps by the plan's
integrator, and flows by adaptive Dormand-Prince between recording times.
"""

from __future__ import annotations

import numpy as np

from sdesim import rng
from sdesim.backends.base import Backend, Support
from sdesim.dynamics.discrete import lookahead, nudged, sgd_update


def gaussians(seed, k, n_particles, r):
    """Standard normals ``(N, r)`` of step ``k``: counters ``k * n_pairs + j``."""
    m = (r + 1) // 2
    streams = np.arange(n_particles, dtype=np.uint64)
    cols = []
    for j in range(m):
        z0, z1 = rng.normal_pairs(seed, streams, np.uint64(k * m + j))
        cols += [z0, z1]
    return np.stack(cols, axis=1)[:, :r] if r else np.zeros((n_particles, 0))


def stochastic_gradient(plan, state, W, k, t, alive):
    r""":math:`g_B(w)` for the alive particles at step ``k``."""
    loss = plan.loss
    if plan.sampler is not None:
        idx = plan.sampler.indices(k, np.arange(plan.n_particles), state.scratch)
        return loss.minibatch_grad(W, idx[alive])
    if plan.noise is None:
        return loss.grad(W, t)
    G = plan.noise.factor_at(loss, W, t)
    Z = gaussians(plan.seed, k, plan.n_particles, plan.n_normals)[alive]
    noise = Z @ G.T if G.ndim == 2 else np.einsum("nij,nj->ni", G, Z)
    return loss.grad(W, t) + noise / np.sqrt(plan.batch_size)


def nudge(plan, W, g, t):
    """Scale the step along the top ``nudge_k`` Hessian eigendirections by ``nudge_factor``."""
    k, factor = plan.nudge
    _, U = np.linalg.eigh(plan.loss.hessian(W, t))
    return nudged(g, U[..., -k:], factor)


def discrete_step(plan, state, k, alive):
    t = k * plan.dt
    lr = float(plan.lr_at(k))
    W, V = state.W[alive], state.V[alive]
    look = lookahead(W, V, plan.momentum, plan.lookahead != 0.0)
    g = stochastic_gradient(plan, state, look, k, t, alive)
    if plan.nudge[0]:
        g = nudge(plan, look, g, t)
    W, V = sgd_update(W, V, g, lr, plan.momentum)
    state.V[alive] = V
    return W


def sde_step(plan, state, k, alive):
    Z = gaussians(plan.seed, k, plan.n_particles, plan.n_normals)[alive]
    return plan.integrator.step(plan.sde, state.W[alive], k * plan.dt, plan.dt, Z)


def advance_flow(plan, state, k0, k1, record):
    """Flows: adaptive Dormand-Prince between recording times (no fixed steps)."""
    records = []
    stops = sorted({k for k in record if k0 <= k < k1} | {k1})
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
            records.append(state.W.copy())
    return records


def mark_divergence(plan, state, k):
    """Stop particles whose state is non-finite or beyond ``bound``: NaN from step ``k`` on."""
    bad = (state.diverged_at < 0) & ~(np.abs(state.W) <= plan.bound).all(axis=1)
    if bad.any():
        state.diverged_at[bad] = k
        state.W[bad] = np.nan


class NumpyBackend(Backend):
    """The reference: runs every plan."""

    name = "numpy"

    def support(self, plan) -> Support:
        return Support("reference")

    def advance(self, plan, state, k0, k1, record):
        record = set(int(r) for r in record)
        if plan.family == "flow":
            return advance_flow(plan, state, k0, k1, record)
        step = discrete_step if plan.family == "discrete" else sde_step
        records = []
        for k in range(k0, k1):
            if k in record:
                records.append(state.W.copy())
            alive = state.diverged_at < 0
            if alive.any():
                state.W[alive] = step(plan, state, k, alive)
                mark_divergence(plan, state, k + 1)
        return records


backend = NumpyBackend()
