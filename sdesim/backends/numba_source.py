"""Source of the Numba ensemble kernels, generated per loss and configuration.

Every kernel has the same shape: ``prange`` over chunks of particles, the time
loop inside, then the particle loop, with the state in registers (scalar
locals ``_x0, _x1, ...``) and the drift inlined from the loss expression. State
arrays are structure-of-arrays, ``W[dim, N]``, so the inner particle loop reads
contiguous memory. Random numbers come from :mod:`sdesim.rng` with the
counter layout of :mod:`sdesim.plan`, so the kernels reproduce the
NumPy reference backend number for number.

One update covers GD, SGD with Gaussian noise, momentum and Nesterov, and the
SDE schemes::

    f = drift(x + look * v)                       # -grad C, or the modified drift
    n = noise factor @ z                          # identity, constant matrix, or from the Hessian
    d = a_k f + b_k n                             # Euler / SGD step
    d = a_k (f + drift(x + d)) / 2 + b_k n        # Heun and weak-2 (predictor x + d)
    v = mu v + d;  x = x + v                      # mu = 0: x = x + d
"""

from __future__ import annotations

import sympy

from sdesim import codegen
from sdesim import rng

HEADER = f"""\
# sdesim.rng VERSION {rng.VERSION}: part of the cache key of every generated kernel
import math
import numpy as np
from numba import njit, prange
from sdesim.linalg import psd_root
from sdesim.rng import normal_pair, three_point, uniform
"""


def point_function(name, exprs, variables, scalars=()):
    """``@njit(inline="always") def name(_x0, .., scalars) -> tuple`` of the expressions."""
    args = [sympy.Symbol(f"_x{i}", real=True) for i in range(len(variables))]
    exprs = [sympy.sympify(e).xreplace(dict(zip(variables, args))) for e in exprs]
    inputs = codegen.Inputs((("x", tuple(args)),), tuple(scalars))
    body = codegen._body(exprs, inputs, lambda a, i: f"_x{i}", lambda k: f"_o{k}", codegen._NumbaPrinter())
    body = [line for line in body if not (line.startswith("_x") and line.split(" = ")[0] == line.split(" = ")[1])]
    signature = ", ".join([f"_x{i}" for i in range(len(variables))] + [s.name for s in scalars])
    outputs = ", ".join(f"_o{k}" for k in range(len(exprs)))
    lines = "\n".join("    " + line for line in body)
    return f'\n@njit(inline="always")\ndef {name}({signature}):\n{lines}\n    return ({outputs},)\n'


def _lines(depth, *lines):
    return "".join("    " * depth + line + "\n" for line in lines)


def _record_divergence(n):
    """After a step: stopped particles are NaN, so more bad than stopped means new divergences."""
    return (_lines(3, "if bad > dead:") + _lines(4, f"for i in range({n}):")
            + _lines(5, "if dv[i] < 0 and _w0[i] != _w0[i]:") + _lines(6, "dv[i] = k + 1", "dead += 1"))


def symbolic_kernel(dim, n_params, noise, r, scheme, momentum, nudge):
    """Source of ``run(...)`` for a symbolic loss.

    ``noise``: ``"none"``, ``"identity"``, ``"matrix"`` (constant ``G (dim, r)``)
    or ``"hessian"`` (factor of the clipped Hessian). ``scheme``: ``"euler"``,
    ``"heun"`` or ``"weak2"``.

    The particle loop is branch-free so that LLVM vectorises it (8 particles per
    AVX-512 instruction): state arrays are sliced to the chunk and indexed from 0
    (an index from ``range(lo, hi)`` could be negative as far as LLVM knows, and
    Numba's wraparound select would block vectorisation), loop invariants (``G``,
    time-dependent parameters) are read into scalars before the loop, and a
    particle leaving ``|w_i| <= bound`` is set to NaN by a select and counted. A
    stopped particle stays NaN (NaN in, NaN out), so the count exceeds the
    chunk's stopped particles only at a new divergence, and only then does a
    scalar pass record the step in ``diverged``. Kernels with a per-particle
    eigendecomposition (Hessian noise, nudging) skip stopped particles instead,
    since LAPACK rejects NaN.
    """
    d = range(dim)
    pairs = (r + 1) // 2 if noise != "none" else 0
    par = "".join(f"_p{j}, " for j in range(n_params))
    ys = ", ".join(f"_y{i}" for i in d)
    eig = noise == "hessian" or nudge
    src = ("\n@njit(cache=True, parallel=True)\n"
           "def run(W, V, k0, k1, a, b, lrs, P, G, mu, look, nudge_k, nudge_f, seed, rec, R, diverged, bound, chunk):\n")
    src += _lines(1, "N = W.shape[1]", "nchunks = (N + chunk - 1) // chunk")
    if noise == "matrix":
        src += _lines(1, *[f"_G{i}_{j} = G[{i}, {j}]" for i in d for j in range(r)])
    src += _lines(1, "for c in prange(nchunks):")
    src += _lines(2, "lo = c * chunk", "hi = min(N, lo + chunk)", "ri = 0")
    src += _lines(2, *[f"_w{i} = W[{i}, lo:hi]" for i in d])
    if momentum:
        src += _lines(2, *[f"_V{i} = V[{i}, lo:hi]" for i in d])
    src += _lines(2, "dv = diverged[lo:hi]", "n = hi - lo", "dead = 0",
                  "for i in range(n):", "    dead += dv[i] >= 0")
    if eig:
        src += _lines(2, f"Hm = np.empty(({dim}, {dim}))")
    src += _lines(2, "for k in range(k0, k1):")
    src += _lines(3, "if ri < rec.shape[0] and rec[ri] == k:")
    src += _lines(4, "for i in range(n):")
    src += _lines(5, *[f"R[ri, lo + i, {i}] = _w{i}[i]" for i in d])
    src += _lines(4, "ri += 1")
    src += _lines(3, "ak = a[k - k0]", "bk = b[k - k0]", "lrk = lrs[k - k0]")
    src += _lines(3, *[f"_p{j} = P[k - k0, {j}]" for j in range(n_params)])
    if scheme in ("heun", "weak2"):
        # the corrector's drift at t_{k+1}: P and lrs carry one more row than steps
        src += _lines(3, "lrk2 = lrs[k - k0 + 1]", *[f"_q{j} = P[k - k0 + 1, {j}]" for j in range(n_params)])
    src += _lines(3, "bad = 0", "for i in range(n):")
    body = ["if dv[i] >= 0:", "    bad += 1", "    continue"] if eig else []
    body += [f"_x{i} = _w{i}[i]" for i in d]
    if momentum:
        body += [f"_v{i} = _V{i}[i]" for i in d]
        body += [f"_y{i} = _x{i} + look * _v{i}" for i in d]
    else:
        body += [f"_y{i} = _x{i}" for i in d]
    body += [f"_f = drift({ys}, {par}lrk)"]
    body += [f"_f{i} = _f[{i}]" for i in d]
    if noise != "none":
        for j in range(pairs):
            body += [f"_z{2 * j}, _z{2 * j + 1} = normal_pair(seed, lo + i, k * {pairs} + {j})"]
        if scheme == "weak2":
            body += [f"_z{j} = three_point(_z{j})" for j in range(r)]
    if noise == "identity":
        body += [f"_n{i} = _z{i}" for i in d]
    elif noise == "matrix":
        body += [f"_n{i} = " + " + ".join(f"_G{i}_{j} * _z{j}" for j in range(r)) for i in d]
    if eig:
        body += [f"_h = hessian({ys}, {par.rstrip(', ')})" if n_params else f"_h = hessian({ys})"]
        body += [f"Hm[{i}, {j}] = _h[{i * dim + j}]" for i in d for j in d]
        body += ["_mu, _U = np.linalg.eigh(Hm)"]
    if noise == "hessian":
        body += [f"_n{i} = " + " + ".join(f"_U[{i}, {j}] * psd_root(_mu, {j}) * _z{j}" for j in d)
                 for i in d]
    if noise == "none":
        body += [f"_n{i} = 0.0" for i in d]
    body += [f"_d{i} = ak * _f{i} + bk * _n{i}" for i in d]
    if nudge:
        # scale the step along the top nudge_k eigenvectors (eigh sorts ascending)
        body += ["for _j in range(" + str(dim) + " - nudge_k, " + str(dim) + "):",
                 "    _c = (" + " + ".join(f"_U[{i}, _j] * _d{i}" for i in d) + ") * (1.0 - nudge_f)"]
        body += [f"    _d{i} -= _c * _U[{i}, _j]" for i in d]
    if scheme in ("heun", "weak2"):
        par2 = "".join(f"_q{j}, " for j in range(n_params))
        body += [f"_f2 = drift({', '.join(f'_x{i} + _d{i}' for i in d)}, {par2}lrk2)"]
        body += [f"_d{i} = ak * 0.5 * (_f{i} + _f2[{i}]) + bk * _n{i}" for i in d]
    if momentum:
        body += [f"_v{i} = mu * _v{i} + _d{i}" for i in d]
        body += [f"_V{i}[i] = _v{i}" for i in d]
        body += [f"_x{i} += _v{i}" for i in d]
    else:
        body += [f"_x{i} += _d{i}" for i in d]
    body += ["ok = " + " & ".join(f"(abs(_x{i}) <= bound)" for i in d)]
    body += ["bad += not ok"]
    body += [f"_w{i}[i] = _x{i} if ok else np.nan" for i in d]
    src += _lines(4, *body)
    return src + _record_divergence("n")


FINITE_SUM = """
@njit(inline="always")
def batch_gradient(w, X, idx, g, tmp):
    for i in range(g.shape[0]):
        g[i] = 0.0
    for j in range(idx.shape[0]):
        sample_grad(w, X[idx[j]], tmp)
        for i in range(g.shape[0]):
            g[i] += tmp[i]
    for i in range(g.shape[0]):
        g[i] /= idx.shape[0]


@njit(inline="always")
def full_gradient(w, X, g, tmp):
    n = X.shape[0]
    for i in range(g.shape[0]):
        g[i] = 0.0
    for s in range(n):
        sample_grad(w, X[s], tmp)
        for i in range(g.shape[0]):
            g[i] += tmp[i]
    for i in range(g.shape[0]):
        g[i] /= n


@njit(inline="always")
def covariance_factor(w, X, g, tmp, C):
    # Sigma_1(w) = mean (grad l_i - g)(grad l_i - g)^T; returns U sqrt(mu), round-off zeroed
    n = X.shape[0]
    d = g.shape[0]
    C[:, :] = 0.0
    for s in range(n):
        sample_grad(w, X[s], tmp)
        for i in range(d):
            tmp[i] -= g[i]
        for i in range(d):
            for j in range(d):
                C[i, j] += tmp[i] * tmp[j]
    C /= n
    mu, U = np.linalg.eigh(C)
    for j in range(d):
        s = psd_root(mu, j)
        for i in range(d):
            U[i, j] *= s
    return U


@njit(cache=True, parallel=True)
def run(W, V, X, k0, k1, a, b, G, mu, look, mode, B, anisotropic, heun, weak2, seed, key, perm,
        rec, R, diverged, bound, chunk):
    # mode: 0 full gradient, 1 with replacement, 2 shuffle, 3 fixed batches; V (d, 0): no momentum
    d, N = W.shape
    vel = V.shape[1] > 0
    n = X.shape[0]
    r = G.shape[1] if not anisotropic else d
    pairs = (r + 1) // 2
    m = n // B if B > 0 else 1
    nchunks = (N + chunk - 1) // chunk
    for c in prange(nchunks):
        lo = c * chunk
        hi = min(N, lo + chunk)
        ri = 0
        y = np.empty(d)
        g = np.empty(d)
        g2 = np.empty(d)
        tmp = np.empty(d)
        tmp2 = np.empty(d)
        z = np.empty(2 * pairs + 1)
        nz = np.empty(d)
        C = np.empty((d, d))
        idx = np.empty(max(B, 1), np.int64)
        keys = np.empty(max(n, m))
        for k in range(k0, k1):
            if ri < rec.shape[0] and rec[ri] == k:
                for p in range(lo, hi):
                    for i in range(d):
                        R[ri, p, i] = W[i, p]
                ri += 1
            ak = a[k - k0]
            bk = b[k - k0]
            epoch = k // m
            pos = k - epoch * m
            for p in range(lo, hi):
                if diverged[p] >= 0:
                    continue
                for i in range(d):
                    y[i] = W[i, p] + look * V[i, p] if vel else W[i, p]
                if mode == 0:
                    full_gradient(y, X, g, tmp)
                else:
                    if mode == 1:
                        for j in range(B):
                            idx[j] = min(int(uniform(key, p, k * B + j) * n), n - 1)
                    elif mode == 2:
                        if pos == 0 or k == k0:
                            for s in range(n):
                                keys[s] = uniform(key, p, epoch * n + s)
                            perm[p, :] = np.argsort(keys[:n], kind="mergesort")
                        for j in range(B):
                            idx[j] = perm[p, pos * B + j]
                    else:
                        if pos == 0 or k == k0:
                            for s in range(m):
                                keys[s] = uniform(key, p, epoch * m + s)
                            perm[p, :m] = np.argsort(keys[:m], kind="mergesort")
                        for j in range(B):
                            idx[j] = perm[p, pos] * B + j
                    batch_gradient(y, X, idx, g, tmp)
                for i in range(d):
                    nz[i] = 0.0
                if bk != 0.0:
                    for j in range(pairs):
                        z[2 * j], z[2 * j + 1] = normal_pair(seed, p, k * pairs + j)
                    if weak2:
                        for j in range(r):
                            z[j] = three_point(z[j])
                    if anisotropic:
                        F = covariance_factor(y, X, g, tmp, C)
                        for i in range(d):
                            for j in range(d):
                                nz[i] += F[i, j] * z[j]
                    else:
                        for i in range(d):
                            for j in range(r):
                                nz[i] += G[i, j] * z[j]
                for i in range(d):
                    tmp[i] = -ak * g[i] + bk * nz[i]
                if heun:
                    for i in range(d):
                        y[i] = W[i, p] + tmp[i]
                    full_gradient(y, X, g2, tmp2)
                    for i in range(d):
                        tmp[i] = -ak * 0.5 * (g[i] + g2[i]) + bk * nz[i]
                ok = True
                for i in range(d):
                    if vel:
                        V[i, p] = mu * V[i, p] + tmp[i]
                        W[i, p] += V[i, p]
                    else:
                        W[i, p] += tmp[i]
                    if not abs(W[i, p]) <= bound:
                        ok = False
                if not ok:
                    diverged[p] = k + 1
                    for i in range(d):
                        W[i, p] = np.nan
"""


def finite_sum_sgd_kernel(dim, m):
    """Source of ``run_sgd(...)``: SGD with replacement on a finite sum.

    Needs ``sample_grad_s(w_0, .., w_{dim-1}, x_0, .., x_{m-1}) -> tuple`` (the
    per-sample gradient on scalars). Each step first draws the minibatch indices
    ``uniform(key, chain, k * B + j)`` of all chains of a chunk, in a loop over
    chains that vectorises; then each chain sums its batch gradient in scalar
    registers, in the order of :data:`FINITE_SUM`'s ``run`` (``j`` ascending,
    then ``/ B``), so the numbers are the same. (The gathers of data rows do not
    vectorise: LLVM cannot bound an indirect load against the stores.)
    Divergence as in :func:`symbolic_kernel`.
    """
    d = range(dim)
    src = ("\n@njit(cache=True, parallel=True)\n"
           "def run_sgd(W, V, X, k0, k1, a, b, mu, look, B, key, rec, R, diverged, bound, chunk):\n")
    src += _lines(1, "N = W.shape[1]", "n = X.shape[0]", "nchunks = (N + chunk - 1) // chunk")
    src += _lines(1, "for c in prange(nchunks):")
    src += _lines(2, "lo = c * chunk", "hi = min(N, lo + chunk)", "nc = hi - lo", "ri = 0")
    src += _lines(2, *[f"_w{i} = W[{i}, lo:hi]" for i in d], *[f"_v{i} = V[{i}, lo:hi]" for i in d])
    src += _lines(2, "IX = np.empty((B, nc), np.uint64)  # unsigned: no wraparound code at the gathers")
    src += _lines(2, "dv = diverged[lo:hi]", "dead = 0", "for i in range(nc):", "    dead += dv[i] >= 0")
    src += _lines(2, "for k in range(k0, k1):")
    src += _lines(3, "if ri < rec.shape[0] and rec[ri] == k:")
    src += _lines(4, "for i in range(nc):")
    src += _lines(5, *[f"R[ri, lo + i, {i}] = _w{i}[i]" for i in d])
    src += _lines(4, "ri += 1")
    src += _lines(3, "ak = a[k - k0]")
    src += _lines(3, "for j in range(B):", "    for i in range(nc):")
    src += _lines(5, "IX[j, i] = min(int(uniform(key, lo + i, k * B + j) * n), n - 1)")
    src += _lines(3, "bad = 0", "for i in range(nc):")
    body = [f"_y{i} = _w{i}[i] + look * _v{i}[i]" for i in d]
    body += [f"_g{i} = 0.0" for i in d]
    ys = ", ".join(f"_y{i}" for i in d)
    xs = ", ".join(f"X[ix, {q}]" for q in range(m))
    body += ["for j in range(B):", "    ix = IX[j, i]", f"    _s = sample_grad_s({ys}, {xs})"]
    body += [f"    _g{i} += _s[{i}]" for i in d]
    body += [f"_d{i} = -ak * (_g{i} / B)" for i in d]
    body += [f"_u{i} = mu * _v{i}[i] + _d{i}" for i in d]
    body += [f"_v{i}[i] = _u{i}" for i in d]
    body += [f"_x{i} = _w{i}[i] + _u{i}" for i in d]
    body += ["ok = " + " & ".join(f"(abs(_x{i}) <= bound)" for i in d), "bad += not ok"]
    body += [f"_w{i}[i] = _x{i} if ok else np.nan" for i in d]
    src += _lines(4, *body)
    return src + _record_divergence("nc")
