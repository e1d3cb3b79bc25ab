r"""Numba kernel for quadratic models: linear drift, constant noise.

With deviations :math:`d = w - w^*`, every dynamic on a ``QuadraticModel`` is

.. math:: v \leftarrow \mu v - a_k K (d + \nu v) + b_k L z, \qquad d \leftarrow d + v,

with ``K`` and ``L`` chosen by the backend: SGD (``K = H``, ``L = G_1 / \sqrt B``,
``a_k = lr_k``, ``b_k = -lr_k``), Euler-Maruyama (``K = H``, ``a_k = \Delta t``),
Heun and weak-2 (``K = H - \Delta t H^2 / 2``, ``L = (I - \Delta t H / 2) G``), exact
OU steps (``K = I - e^{-H \Delta t}``, ``L L^T = Q``). The matrix-vector products
run as column updates (``KT[j, :]`` contiguous) so they vectorise without
reassociation.

Since every such ``K`` is a function of ``H``, :func:`run_spectral` runs the same
update in the eigenbasis of a dense ``H``, where ``K`` is diagonal: ``O(dim r)``
per step instead of ``O(dim^2)`` (dynamics without momentum or nudging; the
backend chooses).
"""


import numpy as np
from numba import njit, prange

from sdesim.rng import normal_pair, three_point


@njit(cache=True, parallel=True)
def run(D, V, k0, k1, a, b, KT, LT, w_star, mu, look, weak2, seed, rec, R, diverged, bound, chunk):
    """Advance deviations ``D (N, dim)`` and velocities ``V`` from step ``k0`` to ``k1``.

    Without momentum (``mu = look = 0``) ``V`` may have no rows: the step is ``d += f``.
    """
    N, dim = D.shape
    vel = V.shape[0] > 0
    r = LT.shape[0]
    pairs = (r + 1) // 2
    nchunks = (N + chunk - 1) // chunk
    for c in prange(nchunks):
        lo = c * chunk
        hi = min(N, lo + chunk)
        ri = 0
        y = np.empty(dim)
        f = np.empty(dim)
        z = np.empty(2 * pairs + 1)
        for k in range(k0, k1):
            if ri < rec.shape[0] and rec[ri] == k:
                for p in range(lo, hi):
                    for i in range(dim):
                        R[ri, p, i] = D[p, i] + w_star[i]
                ri += 1
            ak = a[k - k0]
            bk = b[k - k0]
            for p in range(lo, hi):
                if diverged[p] >= 0:
                    continue
                for i in range(dim):
                    if vel:
                        y[i] = D[p, i] + look * V[p, i]
                        f[i] = mu * V[p, i]
                    else:
                        y[i] = D[p, i]
                        f[i] = 0.0
                for j in range(dim):
                    yj = -ak * y[j]
                    for i in range(dim):
                        f[i] += KT[j, i] * yj
                if bk != 0.0:
                    for j in range(pairs):
                        z[2 * j], z[2 * j + 1] = normal_pair(seed, p, k * pairs + j)
                    for j in range(r):
                        zj = bk * (three_point(z[j]) if weak2 else z[j])
                        for i in range(dim):
                            f[i] += LT[j, i] * zj
                ok = True
                for i in range(dim):
                    if vel:
                        V[p, i] = f[i]
                    D[p, i] += f[i]
                    if not abs(D[p, i] + w_star[i]) <= bound:
                        ok = False
                if not ok:
                    diverged[p] = k + 1
                    for i in range(dim):
                        D[p, i] = np.nan


@njit(cache=True, parallel=True)
def run_spectral(E, k0, k1, a, b, kappa, MT, U, w_star, weak2, seed, rec, R, diverged, bound, thr, chunk):
    r"""The update of :func:`run` without momentum in the eigenbasis ``U`` of a ``K = U diag(kappa) U^T``.

    ``E = D U`` are the coordinates of the deviations, ``MT = (U^T L)^T``;
    ``K`` becomes a diagonal, so a step costs
    ``O(dim r)`` instead of ``O(dim^2)``. ``R`` receives the recorded ``E``
    (the caller rotates them back). The normals of a chunk are drawn first,
    in a loop over particles that vectorises, then each particle is updated
    in loops over coordinates that vectorise. ``|e_q| <= thr`` for all ``q``
    (``thr = (bound - max |w*|) / sqrt(dim)``) guarantees ``|w_i| <= bound``;
    only a particle failing it has ``w = U e + w*`` checked exactly.
    """
    N, dim = E.shape
    r = MT.shape[0]
    pairs = (r + 1) // 2
    nchunks = (N + chunk - 1) // chunk
    for c in prange(nchunks):
        lo = c * chunk
        hi = min(N, lo + chunk)
        n = hi - lo
        ri = 0
        f = np.empty(dim)
        Z = np.empty((2 * pairs, n))
        dv = diverged[lo:hi]
        for k in range(k0, k1):
            if ri < rec.shape[0] and rec[ri] == k:
                for i in range(n):
                    for q in range(dim):
                        R[ri, lo + i, q] = E[lo + i, q]
                ri += 1
            ak = a[k - k0]
            bk = b[k - k0]
            if bk != 0.0:
                for j in range(pairs):
                    z0 = Z[2 * j]
                    z1 = Z[2 * j + 1]
                    for i in range(n):
                        z0[i], z1[i] = normal_pair(seed, lo + i, k * pairs + j)
                if weak2:
                    for j in range(r):
                        for i in range(n):
                            Z[j, i] = three_point(Z[j, i])
            for i in range(n):
                if dv[i] >= 0:
                    continue
                e = E[lo + i]
                for q in range(dim):
                    f[q] = -(ak * (kappa[q] * e[q]))
                if bk != 0.0:
                    for j in range(r):
                        zj = bk * Z[j, i]
                        for q in range(dim):
                            f[q] += MT[j, q] * zj
                bad = 0
                for q in range(dim):
                    e[q] += f[q]
                    bad += not abs(e[q]) <= thr
                if bad:
                    ok = True
                    for q in range(dim):
                        w = w_star[q]
                        for j in range(dim):
                            w += U[q, j] * e[j]
                        if not abs(w) <= bound:
                            ok = False
                    if not ok:
                        dv[i] = k + 1
                        for q in range(dim):
                            e[q] = np.nan
