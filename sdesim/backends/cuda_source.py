"""Source of the CUDA ensemble kernels (Numba CUDA), generated per loss and configuration.

One thread per particle, the time loop inside the kernel, the state in registers:
the kernels of :mod:`sdesim.backends.numba_source` and
:mod:`sdesim.backends.numba_linear` with the particle loop replaced by the thread
index ``p = cuda.grid(1)``. Each one performs the same floating-point operations in
the same order as its CPU counterpart and draws from the same counters
(:mod:`sdesim.backends.cuda_rng`), so a GPU run reproduces the CPU and NumPy
backends. State arrays are ``(dim, N)`` (``W[i, p]``): neighbouring threads read
neighbouring memory. Recorded states go to ``R[record, i, p]``.

A thread holds its particle's state, so divergence is per particle: a particle
leaving ``|w_i| <= bound`` is set to NaN, ``diverged[p]`` gets the step (``k + 1``)
and the particle is no longer stepped.
"""

from __future__ import annotations

import re

import sympy

from sdesim import codegen, rng
from sdesim.backends.numba_source import _lines


def header(dtype="float64"):
    """Imports of a generated module; ``FT`` is the floating type of its states and arithmetic."""
    return f"""\
# sdesim.rng VERSION {rng.VERSION}: generated CUDA kernels
import math
import numpy as np
from numba import cuda
from sdesim.backends.cuda_rng import normal_pair, three_point, uniform

DEVICE = cuda.jit(device=True, inline="always")
FT = np.{dtype}
"""


class _TypedPrinter(codegen._NumbaPrinter):
    """Numbers as ``FT(...)``: in float32 a bare literal would promote the arithmetic to float64."""

    def _print_Float(self, expr):
        return f"FT({super()._print_Float(expr)})"

    def _print_Integer(self, expr):
        return f"FT({float(expr)})"

    def _print_Rational(self, expr):
        return f"FT({float(expr.p)}/{float(expr.q)})"

    def _print_Pow(self, expr, rational=False):
        return super()._print_Pow(expr, rational).replace("(1.0/(", "(FT(1.0)/(")

    def doprint(self, expr, assign_to=None):
        return re.sub(r"\bmath\.(pi|e|tau|inf|nan)\b", r"FT(math.\1)", super().doprint(expr, assign_to))


def device_function(name, exprs, variables, scalars=(), dtype="float64"):
    """``@DEVICE def name(_x0, .., scalars) -> tuple`` of the expressions
    (:func:`~sdesim.backends.numba_source.point_function`; in float32 every number is ``FT``)."""
    args = [sympy.Symbol(f"_x{i}", real=True) for i in range(len(variables))]
    exprs = [sympy.sympify(e).xreplace(dict(zip(variables, args))) for e in exprs]
    inputs = codegen.Inputs((("x", tuple(args)),), tuple(scalars))
    printer = _TypedPrinter() if dtype == "float32" else codegen._NumbaPrinter()
    body = codegen._body(exprs, inputs, lambda a, i: f"_x{i}", lambda k: f"_o{k}", printer)
    body = [line for line in body if not (line.startswith("_x") and line.split(" = ")[0] == line.split(" = ")[1])]
    signature = ", ".join([f"_x{i}" for i in range(len(variables))] + [s.name for s in scalars])
    outputs = ", ".join(f"_o{k}" for k in range(len(exprs)))
    lines = "\n".join("    " + line for line in body)
    return f"\n@DEVICE\ndef {name}({signature}):\n{lines}\n    return ({outputs},)\n"


def sample_gradient(loss, dtype="float64"):
    """``@DEVICE def sample_grad_s(w_0, .., x_0, ..) -> tuple``: the per-sample gradient of a finite sum
    (:func:`~sdesim.backends.numba_backend.loss_point_scalar_source`: the same statements)."""
    grad = [sympy.diff(loss.expr, v) for v in loss.variables]
    inputs = codegen.Inputs((("w", loss.variables), ("x", loss.data_symbols)))
    printer = _TypedPrinter() if dtype == "float32" else codegen._NumbaPrinter()
    body = codegen._body(grad, inputs, lambda a_, i: f"{a_}_{i}", lambda k: f"_o{k}", printer)
    args = [f"w_{i}" for i in range(loss.dim)] + [f"x_{i}" for i in range(len(loss.data_symbols))]
    outputs = ", ".join(f"_o{k}" for k in range(loss.dim))
    return (f'\n@DEVICE\ndef sample_grad_s({", ".join(args)}):\n'
            + "".join("    " + line + "\n" for line in body) + f"    return ({outputs},)\n")


def _start(signature, state="W"):
    src = f"\n@cuda.jit\ndef {signature}:\n"
    return src + _lines(1, "p = cuda.grid(1)", f"if p >= {state}.shape[1]:", "    return",
                        "alive = diverged[p] < 0", "ri = 0")


def _record(d):
    """Record the state before step ``k`` (also a stopped particle's NaN), then skip a stopped particle."""
    return (_lines(2, "if ri < rec.shape[0] and rec[ri] == k:")
            + _lines(3, *[f"R[ri, {i}, p] = _x{i}" for i in d], "ri += 1")
            + _lines(2, "if not alive:", "    continue"))


def _draw(pairs, counter, out="_z{j}"):
    """Normals of step ``k``: ``normal_pair(seed, p, counter)`` for ``j < pairs`` (drawn in float64)."""
    return [f"{out.format(j=2 * j)}, {out.format(j=2 * j + 1)} = normal_pair(seed, p, {counter.format(j=j)})"
            for j in range(pairs)]


def _typed(r, z="_z{j}"):
    """The normals (or three-point variables) in the states' type."""
    return [f"{z.format(j=j)} = FT({z.format(j=j)})" for j in range(r)]


def _divergence(d, x="_x{i}"):
    names = [x.format(i=i) for i in d]
    return (["ok = " + " & ".join(f"(abs({n}) <= bound)" for n in names), "if not ok:",
             "    diverged[p] = k + 1", "    alive = False"] + [f"    {n} = FT(math.nan)" for n in names])


def _step_and_store(body, d, momentum):
    """The end of a per-particle step: ``v = mu v + d; x += v`` (or ``x += d``), the divergence
    check, and the registers written back to ``W`` (and ``V``)."""
    if momentum:
        body = body + [f"_v{i} = mu * _v{i} + _d{i}" for i in d] + [f"_x{i} += _v{i}" for i in d]
    else:
        body = body + [f"_x{i} += _d{i}" for i in d]
    src = _lines(2, *body, *_divergence(d)) + _lines(1, *[f"W[{i}, p] = _x{i}" for i in d])
    return src + (_lines(1, *[f"V[{i}, p] = _v{i}" for i in d]) if momentum else "")



def _load_and_loop(d, r, momentum):
    """The start of a per-particle kernel: the noise factor ``G (dim, r)`` and the state in registers,
    then the time loop with its recording."""
    src = _lines(1, *[f"_G{i}_{j} = G[{i}, {j}]" for i in d for j in range(r)])
    src += _lines(1, *[f"_x{i} = W[{i}, p]" for i in d])
    if momentum:
        src += _lines(1, *[f"_v{i} = V[{i}, p]" for i in d])
    return src + _lines(1, "for k in range(k0, k1):") + _record(d)

def symbolic_kernel(dim, n_params, noise, r, scheme, momentum):
    """Source of ``run(...)`` for a symbolic loss (needs ``drift``).

    ``noise``: ``"none"``, ``"identity"`` or ``"matrix"`` (constant ``G (dim, r)``);
    ``scheme``: ``"euler"``, ``"heun"`` or ``"weak2"``. The update is
    :func:`sdesim.backends.numba_source.symbolic_kernel`'s::

        f = drift(x + look v);  d = a_k f + b_k n
        d = a_k (f + drift(x + d)) / 2 + b_k n     (Heun, weak-2)
        v = mu v + d;  x = x + v                   (mu = 0: x = x + d)
    """
    d = range(dim)
    pairs = (r + 1) // 2 if noise != "none" else 0
    par = "".join(f"_p{j}, " for j in range(n_params))
    ys = ", ".join(f"_y{i}" for i in d)
    src = _start("run(W, V, k0, k1, a, b, lrs, P, G, mu, look, seed, rec, R, diverged, bound)")
    src += _load_and_loop(d, r if noise == "matrix" else 0, momentum)
    body = ["ak = a[k - k0]", "bk = b[k - k0]", "lrk = lrs[k - k0]"]
    body += [f"_p{j} = P[k - k0, {j}]" for j in range(n_params)]
    if scheme in ("heun", "weak2"):
        body += ["lrk2 = lrs[k - k0 + 1]"] + [f"_q{j} = P[k - k0 + 1, {j}]" for j in range(n_params)]
    if momentum:
        body += [f"_y{i} = _x{i} + look * _v{i}" for i in d]
    else:
        body += [f"_y{i} = _x{i}" for i in d]
    body += [f"_f = drift({ys}, {par}lrk)"] + [f"_f{i} = _f[{i}]" for i in d]
    if noise != "none":
        body += _draw(pairs, f"k * {pairs} + {{j}}")
        if scheme == "weak2":
            body += [f"_z{j} = three_point(_z{j})" for j in range(r)]
        body += _typed(r)
    if noise == "identity":
        body += [f"_n{i} = _z{i}" for i in d]
    elif noise == "matrix":
        body += [f"_n{i} = " + " + ".join(f"_G{i}_{j} * _z{j}" for j in range(r)) for i in d]
    else:
        body += [f"_n{i} = FT(0.0)" for i in d]
    body += [f"_d{i} = ak * _f{i} + bk * _n{i}" for i in d]
    if scheme in ("heun", "weak2"):
        par2 = "".join(f"_q{j}, " for j in range(n_params))
        body += [f"_f2 = drift({', '.join(f'_x{i} + _d{i}' for i in d)}, {par2}lrk2)"]
        body += [f"_d{i} = ak * FT(0.5) * (_f{i} + _f2[{i}]) + bk * _n{i}" for i in d]
    return src + _step_and_store(body, d, momentum)


def linear_kernel(dim, r, momentum):
    """Source of ``run(...)`` for quadratic models: :func:`sdesim.backends.numba_linear.run` per thread.

    Deviations ``D = W - w* (dim, N)``; ``v = mu v - a_k K (d + look v) + b_k L z``, ``d = d + v``.
    """
    pairs = (r + 1) // 2
    src = _start("run(D, V, k0, k1, a, b, KT, LT, w_star, mu, look, weak2, seed, rec, R, diverged, bound)", "D")
    src += _lines(1, f"y = cuda.local.array({dim}, FT)", f"f = cuda.local.array({dim}, FT)",
                  f"z = cuda.local.array({2 * pairs + 1}, np.float64)")
    src += _lines(1, "for k in range(k0, k1):")
    src += (_lines(2, "if ri < rec.shape[0] and rec[ri] == k:")
            + _lines(3, f"for i in range({dim}):", "    R[ri, i, p] = D[i, p] + w_star[i]", "ri += 1")
            + _lines(2, "if not alive:", "    continue"))
    body = ["ak = a[k - k0]", "bk = b[k - k0]", f"for i in range({dim}):"]
    body += (["    y[i] = D[i, p] + look * V[i, p]", "    f[i] = mu * V[i, p]"] if momentum
             else ["    y[i] = D[i, p]", "    f[i] = FT(0.0)"])
    body += [f"for j in range({dim}):", "    yj = -ak * y[j]", f"    for i in range({dim}):",
             "        f[i] += KT[j, i] * yj"]
    if r:
        body += ["if bk != 0.0:"] + ["    " + line for line in _draw(pairs, f"k * {pairs} + {{j}}", "z[{j}]")]
        body += [f"    for j in range({r}):", "        zj = bk * FT(three_point(z[j]) if weak2 else z[j])",
                 f"        for i in range({dim}):", "            f[i] += LT[j, i] * zj"]
    body += ["ok = True", f"for i in range({dim}):"]
    body += ["    V[i, p] = f[i]"] if momentum else []
    body += ["    D[i, p] += f[i]", "    if not abs(D[i, p] + w_star[i]) <= bound:", "        ok = False",
             "if not ok:", "    diverged[p] = k + 1", "    alive = False",
             f"    for i in range({dim}):", "        D[i, p] = FT(math.nan)"]
    return src + _lines(2, *body)


def spectral_kernel(dim, r):
    """Source of ``run_spectral(...)``: :func:`sdesim.backends.numba_linear.run_spectral` per thread.

    Coordinates ``E = U^T (W - w*) (dim, N)`` in the eigenbasis of ``K = U diag(kappa) U^T``;
    ``R`` receives the recorded ``E`` (the caller rotates them back). ``|e_q| <= thr`` for all
    ``q`` guarantees ``|w_i| <= bound``; only otherwise is ``w = U e + w*`` checked exactly.
    """
    pairs = (r + 1) // 2
    src = _start("run_spectral(E, k0, k1, a, b, kappa, MT, U, w_star, weak2, seed, rec, R, diverged, "
                 "bound, thr)", "E")
    src += _lines(1, f"z = cuda.local.array({2 * pairs + 1}, np.float64)")
    src += _lines(1, "for k in range(k0, k1):")
    src += (_lines(2, "if ri < rec.shape[0] and rec[ri] == k:")
            + _lines(3, f"for q in range({dim}):", "    R[ri, q, p] = E[q, p]", "ri += 1")
            + _lines(2, "if not alive:", "    continue"))
    body = ["ak = a[k - k0]", "bk = b[k - k0]"]
    if r:
        body += ["if bk != 0.0:"] + ["    " + line for line in _draw(pairs, f"k * {pairs} + {{j}}", "z[{j}]")]
        body += ["    if weak2:", f"        for j in range({r}):", "            z[j] = three_point(z[j])"]
    body += ["bad = 0", f"for q in range({dim}):", "    f = -(ak * (kappa[q] * E[q, p]))"]
    if r:
        body += ["    if bk != 0.0:", f"        for j in range({r}):", "            f += MT[j, q] * (bk * FT(z[j]))"]
    body += ["    E[q, p] += f", "    bad += not abs(E[q, p]) <= thr",
             "if bad:", "    ok = True", f"    for q in range({dim}):", "        w = w_star[q]",
             f"        for j in range({dim}):", "            w += U[q, j] * E[j, p]",
             "        if not abs(w) <= bound:", "            ok = False",
             "    if not ok:", "        diverged[p] = k + 1", "        alive = False",
             f"        for q in range({dim}):", "            E[q, p] = FT(math.nan)"]
    return src + _lines(2, *body)


ARGSORT = """
@DEVICE
def argsort_stable(keys, perm, tmp, size):
    # bottom-up merge sort of perm[:size] by keys (stable, as NumPy's kind="stable")
    for s in range(size):
        perm[s] = s
    src, dst = perm, tmp
    width = 1
    passes = 0
    while width < size:
        lo = 0
        while lo < size:
            mid = min(lo + width, size)
            hi = min(lo + 2 * width, size)
            i = lo
            j = mid
            for t in range(lo, hi):
                if i < mid and (j >= hi or keys[src[i]] <= keys[src[j]]):
                    dst[t] = src[i]
                    i += 1
                else:
                    dst[t] = src[j]
                    j += 1
            lo += 2 * width
        src, dst = dst, src
        width *= 2
        passes += 1
    if passes % 2 == 1:
        for s in range(size):
            perm[s] = tmp[s]
"""


def finite_sum_kernel(dim, m, mode, r, scheme, momentum):
    """Source of ``run_finite_sum(...)``: :data:`sdesim.backends.numba_source.FINITE_SUM` per thread.

    Needs ``sample_grad_s(w_0, .., x_0, ..) -> tuple``. ``mode``: 0 full gradient,
    1 minibatches with replacement, 2 shuffled epochs, 3 fixed batches in shuffled order
    (the epoch's order is a stable argsort of ``uniform(key, p, epoch * size + s)``, kept
    in ``perm[p]``). Sums run in the CPU kernel's order (``j`` ascending, then ``/ B``).
    ``r`` Gaussian columns of a constant factor ``G`` (SDEs), ``scheme`` as in
    :func:`symbolic_kernel` (Heun's corrector takes the full gradient).
    """
    d = range(dim)
    pairs = (r + 1) // 2
    src = _start("run_finite_sum(W, V, X, k0, k1, a, b, G, mu, look, B, seed, key, keys, perm, tmp, rec, R, "
                 "diverged, bound)")
    src += _lines(1, "n = X.shape[0]", "m = n // B if B > 0 else 1")
    src += _load_and_loop(d, r, momentum)
    body = ["ak = a[k - k0]", "bk = b[k - k0]", "epoch = k // m", "pos = k - epoch * m"]
    body += [f"_y{i} = _x{i} + look * _v{i}" for i in d] if momentum else [f"_y{i} = _x{i}" for i in d]
    if mode in (2, 3):
        size = "n" if mode == 2 else "m"
        body += ["if pos == 0 or k == k0:", f"    for s in range({size}):",
                 f"        keys[p, s] = uniform(key, p, epoch * {size} + s)",
                 f"    argsort_stable(keys[p], perm[p], tmp[p], {size})"]
    ys = ", ".join(f"_y{i}" for i in d)
    xs = ", ".join(f"X[ix, {q}]" for q in range(m))
    count, index = {0: ("n", "ix = j"), 1: ("B", "ix = min(int(uniform(key, p, k * B + j) * n), n - 1)"),
                    2: ("B", "ix = perm[p, pos * B + j]"), 3: ("B", "ix = perm[p, pos] * B + j")}[mode]
    body += [f"_g{i} = FT(0.0)" for i in d]
    body += [f"for j in range({count}):", f"    {index}", f"    _s = sample_grad_s({ys}, {xs})"]
    body += [f"    _g{i} += _s[{i}]" for i in d]
    body += [f"_g{i} /= FT({count})" for i in d]
    if r:
        body += [f"_n{i} = FT(0.0)" for i in d]
        body += ["if bk != 0.0:"] + ["    " + line for line in _draw(pairs, f"k * {pairs} + {{j}}")]
        if scheme == "weak2":
            body += [f"    _z{j} = three_point(_z{j})" for j in range(r)]
        body += ["    " + line for line in _typed(r)]
        body += [f"    _n{i} += _G{i}_{j} * _z{j}" for i in d for j in range(r)]
    else:
        body += [f"_n{i} = FT(0.0)" for i in d]
    body += [f"_d{i} = -ak * _g{i} + bk * _n{i}" for i in d]
    if scheme in ("heun", "weak2"):
        body += [f"_y{i} = _x{i} + _d{i}" for i in d]
        body += [f"_h{i} = FT(0.0)" for i in d]
        body += ["for ix in range(n):", f"    _s = sample_grad_s({ys}, {xs})"]
        body += [f"    _h{i} += _s[{i}]" for i in d]
        body += [f"_h{i} /= FT(n)" for i in d]
        body += [f"_d{i} = -ak * FT(0.5) * (_g{i} + _h{i}) + bk * _n{i}" for i in d]
    return src + _step_and_store(body, d, momentum)


def flow_kernel(dim, n_params):
    """Source of ``run_flow(...)``: fixed RK4 steps of a flow on a symbolic loss (needs ``drift``, its field).

    ``P`` holds the time parameters on the half-step grid ``t = (k0 + j / 2) dt``; the step is
    :class:`sdesim.integrators.RK4`'s::

        k1 = f(x, t);  k2 = f(x + h/2 k1, t + h/2);  k3 = f(x + h/2 k2, t + h/2);  k4 = f(x + h k3, t + h)
        x = x + h/6 (k1 + 2 k2 + 2 k3 + k4)
    """
    d = range(dim)
    src = _start("run_flow(W, k0, k1, h, P, lr, rec, R, diverged, bound)")
    src += _lines(1, *[f"_x{i} = W[{i}, p]" for i in d])
    src += _lines(1, "for k in range(k0, k1):")
    src += _record(d)
    body = ["j = 2 * (k - k0)"]
    stages = (("_a", "x{i}", "j"), ("_b", "x{i} + h / FT(2.0) * _a[{i}]", "j + 1"),
              ("_c", "x{i} + h / FT(2.0) * _b[{i}]", "j + 1"), ("_e", "x{i} + h * _c[{i}]", "j + 2"))
    for out, y, row in stages:
        args = ", ".join("_" + y.format(i=i) for i in d)
        par = "".join(f"P[{row}, {q}], " for q in range(n_params))
        body += [f"{out} = drift({args}, {par}lr)"]
    body += [f"_d{i} = h / FT(6.0) * (_a[{i}] + FT(2.0) * _b[{i}] + FT(2.0) * _c[{i}] + _e[{i}])" for i in d]
    return src + _step_and_store(body, d, False)
