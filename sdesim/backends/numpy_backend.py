"""The NumPy backend: the readable reference every faster backend is tested against.

Each step is vectorised over particles; the loop over steps is in Python.
"""

from __future__ import annotations

import numpy as np

from sdesim import integrators
from sdesim import rng
from sdesim.backends.common import BoundSDE, n_pairs, sampling_key
from sdesim.dynamics import GD, SGD, SGDDiffusion
from sdesim.dynamics.noise import constant_factor, per_sample_covariance, psd_factor
from sdesim.errors import ConfigError

name = "numpy"


def gaussians(seed, k, n_particles, r):
    """Standard normals ``(N, r)`` of step ``k``: counters ``k * n_pairs + j``."""
    m = n_pairs(r)
    streams = np.arange(n_particles, dtype=np.uint64)
    cols = []
    for j in range(m):
        z0, z1 = rng.normal_pairs(seed, streams, np.uint64(k * m + j))
        cols += [z0, z1]
    return np.stack(cols, axis=1)[:, :r] if r else np.zeros((n_particles, 0))


def _uniforms(key, n_particles, counters):
    """Uniforms ``(N, len(counters))`` of the sampling stream."""
    streams = np.arange(n_particles, dtype=np.uint64)[:, None]
    return rng.uniforms(key, streams, np.asarray(counters, dtype=np.uint64)[None, :])


def minibatch_indices(problem, state, k):
    """Sample indices ``(N, B)`` used by every particle at step ``k``."""
    dyn, n, N = problem.dynamic, problem.loss.n_samples, problem.n_particles
    B = dyn.batch_size
    key = sampling_key(problem.seed)
    if dyn.sampling == "replacement":
        u = _uniforms(key, N, k * B + np.arange(B))
        return np.minimum((u * n).astype(np.int64), n - 1)
    m = n // B
    epoch, pos = divmod(k, m)
    if state.extra.get("epoch") != epoch:
        if dyn.sampling == "shuffle":
            order = np.argsort(_uniforms(key, N, epoch * n + np.arange(n)), axis=1, kind="stable")
        else:
            order = np.argsort(_uniforms(key, N, epoch * m + np.arange(m)), axis=1, kind="stable")
        state.extra.update(epoch=epoch, order=order)
    order = state.extra["order"]
    if dyn.sampling == "shuffle":
        return order[:, pos * B:(pos + 1) * B]
    return order[:, pos:pos + 1] * B + np.arange(B)


def stochastic_gradient(problem, state, W, k, t, alive):
    """:math:`g_B(w)` for the alive particles at step ``k``."""
    dyn, loss = problem.dynamic, problem.loss
    if isinstance(dyn, GD):
        return loss.grad(W, t)
    if problem.kind == "finite_sum":
        return loss.minibatch_grad(W, minibatch_indices(problem, state, k)[alive])
    G = constant_factor(loss, dyn.noise_covariance, dyn.noise_factor)
    if G is None:
        G = psd_factor(per_sample_covariance(loss, W, t, dyn.noise_covariance, dyn.noise_factor))
    Z = gaussians(problem.seed, k, problem.n_particles, G.shape[-1])[alive]
    noise = Z @ G.T if G.ndim == 2 else np.einsum("nij,nj->ni", G, Z)
    return loss.grad(W, t) + noise / np.sqrt(dyn.batch_size)


def nudge(problem, W, g, t):
    """Scale the step along the top ``nudge_k`` Hessian eigendirections by ``nudge_factor``."""
    dyn = problem.dynamic
    _, U = np.linalg.eigh(problem.loss.hessian(W, t))
    top = U[..., -dyn.nudge_k:]
    along = np.einsum("nik,ni->nk", top, g)
    return g - (1.0 - dyn.nudge_factor) * np.einsum("nik,nk->ni", top, along)


def discrete_step(problem, state, k, alive):
    dyn = problem.dynamic
    t = k * problem.dt
    lr = float(dyn.lr_at(t))
    W = state.W[alive]
    momentum = getattr(dyn, "momentum", 0.0)
    look = W + momentum * state.V[alive] if getattr(dyn, "nesterov", False) else W
    g = stochastic_gradient(problem, state, look, k, t, alive)
    if getattr(dyn, "nudge_k", 0):
        g = nudge(problem, look, g, t)
    if momentum:
        V = momentum * state.V[alive] - lr * g
        state.V[alive] = V
        return W + V
    return W - lr * g


def advance(problem, state, k0, k1, record):
    """Advance ``state`` from step ``k0`` to ``k1``; return the states at steps ``record`` (before stepping)."""
    dyn = problem.dynamic
    records = []
    record = set(int(r) for r in record)
    if isinstance(dyn, (GD, SGD)):
        step = lambda k, alive: discrete_step(problem, state, k, alive)
    elif isinstance(dyn, SGDDiffusion):
        sde = BoundSDE(problem.loss, dyn)
        integ = integrators.get(problem.integrator or "euler_maruyama")
        if integ.needs_additive and not sde.additive:
            raise ConfigError(f"integrator {integ.name!r} needs additive noise; "
                             f"this diffusion's noise depends on w (use 'euler_maruyama' or 'milstein')")
        # an exact OU transition spreads the noise over every direction H mixes it into
        r = problem.dim if integ.name == "exact_ou" else sde.n_noise

        def step(k, alive):
            Z = gaussians(problem.seed, k, problem.n_particles, r)[alive]
            return integ.step(sde, state.W[alive], k * problem.dt, problem.dt, Z)
    else:
        return advance_flow(problem, state, k0, k1, record)
    for k in range(k0, k1):
        if k in record:
            records.append(state.W.copy())
        alive = state.diverged_at < 0
        state.W[alive] = step(k, alive)
        mark_divergence(problem, state, k + 1)
    return records


def advance_flow(problem, state, k0, k1, record):
    """Flows: adaptive Dormand-Prince between recording times (no fixed steps)."""
    solver = integrators.Dopri5()
    field = lambda W, t: problem.dynamic.drift(problem.loss, W, t)
    records = []
    stops = sorted({k for k in record if k0 <= k < k1} | {k1})
    k = k0
    for stop in stops:
        alive = state.diverged_at < 0
        if stop > k and alive.any():
            W, state.extra["h"], t_stop = solver.integrate(field, state.W[alive], k * problem.dt,
                                                           stop * problem.dt, state.extra.get("h"),
                                                           bound=problem.bound)
            state.W[alive] = W
            # a particle stopped at t diverged at the first step k with k * dt >= t
            stopped = np.flatnonzero(alive)[np.isfinite(t_stop)]
            state.diverged_at[stopped] = np.ceil(t_stop[np.isfinite(t_stop)] / problem.dt - 1e-9).astype(np.int64)
            mark_divergence(problem, state, stop)
        k = stop
        if stop in record and stop < k1:
            records.append(state.W.copy())
    return records


def mark_divergence(problem, state, k):
    """Stop particles whose state is non-finite or beyond ``bound``: NaN from step ``k`` on."""
    bad = (state.diverged_at < 0) & ~(np.abs(state.W) <= problem.bound).all(axis=1)
    if bad.any():
        state.diverged_at[bad] = k
        state.W[bad] = np.nan
