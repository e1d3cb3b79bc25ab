"""Loss-layer benchmarks.

(a) first-call latency of a 2D ``Loss``: cold (fresh ``SDESIM_CACHE``, so sympy
    code generation and Numba compilation) and warm (a second process on the
    same cache), each in its own subprocess;
(b) compiled ``Loss.grad`` throughput on 1e6 points against
    ``sympy.lambdify(..., "numpy")`` on the same points in the same process;
(c) ``FiniteSumLoss.noise_covariance`` throughput (particles x samples per
    second) against a chunked NumPy computation.

Run: ``python benchmarks/losses.py [--points 1000000] [--repeat 7]``.
Timings are the best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

EXPR = "(x**2 - 1)**2 + 2*y**2 + 0.5*x*y"

CHILD = """
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import sdesim as sd
t1 = time.perf_counter()
loss = sd.Loss(sys.argv[1])
g = loss.grad(np.array([[0.5, -0.25]]))
v = loss.value(np.array([[0.5, -0.25]]))
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "first_call": t2 - t1}))
"""


def best(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def first_call_latency():
    """Cold and warm first-call times (constructing the Loss, first grad and value)."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "SDESIM_CACHE": cache}
        out = []
        for label in ("cold", "warm"):
            res = subprocess.run([sys.executable, "-c", CHILD, EXPR], env=env, capture_output=True,
                                 text=True, check=True)
            out.append((label, json.loads(res.stdout.strip().splitlines()[-1])))
    print("(a) first call of Loss(...).grad + .value, 2D polynomial, in a fresh process")
    for label, r in out:
        print(f"    {label:5s}: first call {r['first_call']:7.3f} s   (import sdesim + numpy {r['import']:.3f} s)")


def grad_throughput(n_points, repeat):
    import numba
    import sympy

    import sdesim as sd

    loss = sd.Loss(EXPR)
    W = np.random.default_rng(0).uniform(-2, 2, size=(n_points, 2))
    lam = sympy.lambdify(loss.variables, list(loss.gradient_exprs), "numpy")

    def lambdified():
        return np.stack(lam(W[:, 0], W[:, 1]), axis=-1)

    np.testing.assert_allclose(loss.grad(W), lambdified(), rtol=1e-12, atol=1e-12)
    t_lam = best(lambdified, repeat)
    threads = numba.get_num_threads()
    rows = []
    for nt in sorted({threads, 1}, reverse=True):
        numba.set_num_threads(nt)
        loss.grad(W)
        rows.append((nt, best(lambda: loss.grad(W), repeat)))
    numba.set_num_threads(threads)
    print(f"(b) grad on {n_points:.0e} points of {EXPR!r} (best of {repeat})")
    print(f"    sympy.lambdify numpy : {t_lam * 1e3:8.2f} ms  ({n_points / t_lam / 1e6:7.1f} Mpoints/s)")
    for nt, t in rows:
        print(f"    Loss.grad, {nt:2d} thread{'s' if nt > 1 else ' '}: {t * 1e3:8.2f} ms  "
              f"({n_points / t / 1e6:7.1f} Mpoints/s)   ratio {t_lam / t:5.1f}x")
    return t_lam / min(t for _, t in rows)


def covariance_throughput(n_particles, n_samples, repeat):
    import sdesim as sd

    rng = np.random.default_rng(1)
    x = rng.normal(size=n_samples)
    y = 1.5 * x + rng.normal(size=n_samples)
    loss = sd.FiniteSumLoss("0.5*(a*x + b - y)**2", params=("a", "b"), data={"x": x, "y": y})
    W = rng.normal(size=(n_particles, 2))
    loss.noise_covariance(W[:2])
    t = best(lambda: loss.noise_covariance(W), max(1, repeat // 3))

    def numpy_cov(Wp, chunk=256):
        out = np.empty((len(Wp), 2, 2))
        for s in range(0, len(Wp), chunk):
            w = Wp[s:s + chunk]
            r = w[:, :1] * x + w[:, 1:] - y                     # (chunk, n)
            G = np.stack([r * x, r], axis=-1)
            D = G - G.mean(1, keepdims=True)
            out[s:s + chunk] = np.einsum("pij,pik->pjk", D, D) / n_samples
        return out

    sub = W[: max(1, n_particles // 10)]
    np.testing.assert_allclose(loss.noise_covariance(sub), numpy_cov(sub), rtol=1e-9)
    t_np = best(lambda: numpy_cov(sub), 1) * len(W) / len(sub)
    pairs = n_particles * n_samples
    print(f"(c) FiniteSumLoss.noise_covariance, {n_particles:.0e} particles x {n_samples:.0e} samples, 2 params")
    print(f"    compiled : {t:7.3f} s  ({pairs / t / 1e6:8.1f} M particle-samples/s)")
    print(f"    NumPy (chunked, extrapolated from {len(sub)} particles): {t_np:7.3f} s   ratio {t_np / t:5.1f}x")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--particles", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=10_000)
    args = parser.parse_args(argv)
    import numba
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# {os.cpu_count()} CPUs, Numba {numba.__version__} with {numba.config.NUMBA_NUM_THREADS} threads, "
          f"load average {load:.1f}")
    first_call_latency()
    grad_throughput(args.points, args.repeat)
    covariance_throughput(args.particles, args.samples, args.repeat)


if __name__ == "__main__":
    main()
