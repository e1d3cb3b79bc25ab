"""Throughput of the counter-based normals (``sdesim.rng``) in normals/s.

Variants: (a) ``numpy.random.default_rng().standard_normal``, (b) the NumPy
Philox/Box-Muller (``rng.normals``), (c) a Numba ``parallel=True`` kernel in the
simulator's shape (state ``W[2, N]``, ``prange`` over particle chunks, steps,
then the vectorised particle loop calling ``rng.normal_pair``) on 2 threads,
(d) the same kernel on 1 thread, and (e) the kernel of (c) with a textbook
Box-Muller on libm ``log``/``cos``/``sin`` (vectorises only with SVML).

Run: ``python benchmarks/rng.py [--particles N] [--steps S] [--asm]``.
"""

import argparse
import math
import os
import time

import numba
import numpy as np

from sdesim import rng


@numba.njit(parallel=True, cache=True)
def em_noise_kernel(seed, W, step0, steps, chunk):
    """Add ``steps`` normal pairs to each particle of ``W (2, N)`` in place.

    Parameters
    ----------
    seed : uint64
        RNG key.
    W : ndarray of float64, shape (2, N)
        Structure-of-arrays state, updated in place.
    step0, steps : int
        First step (counter) and number of steps.
    chunk : int
        Particles per parallel task.
    """
    n = W.shape[1]
    nchunks = (n + chunk - 1) // chunk
    for c in numba.prange(nchunks):
        lo = c * chunk
        hi = min(lo + chunk, n)
        # slice views indexed from 0: an index ``p`` from ``range(lo, hi)``
        # could be negative for all LLVM knows, and the wraparound select
        # that Numba then emits blocks vectorisation
        x = W[0, lo:hi]
        y = W[1, lo:hi]
        for k in range(step0, step0 + steps):
            for i in range(x.shape[0]):
                z0, z1 = rng.normal_pair(seed, lo + i, k)
                x[i] += z0
                y[i] += z1


@numba.njit(parallel=True, cache=True)
def libm_noise_kernel(seed, W, step0, steps, chunk):
    """:func:`em_noise_kernel` with Box-Muller on libm ``log``, ``cos``, ``sin``."""
    n = W.shape[1]
    nchunks = (n + chunk - 1) // chunk
    for c in numba.prange(nchunks):
        lo = c * chunk
        hi = min(lo + chunk, n)
        x = W[0, lo:hi]
        y = W[1, lo:hi]
        for k in range(step0, step0 + steps):
            for i in range(x.shape[0]):
                x0, x1 = rng.philox4x32(seed, lo + i, k)
                u1 = (np.float64(np.int64(x0 >> np.uint64(11))) + 1.0) * 2.0**-53
                u2 = np.float64(np.int64(x1 >> np.uint64(11))) * 2.0**-53
                radius = math.sqrt(-2.0 * math.log(u1))
                x[i] += radius * math.cos(2.0 * math.pi * u2)
                y[i] += radius * math.sin(2.0 * math.pi * u2)


def _rate(fn, n_normals, repeat):
    """Best-of-``repeat`` normals per wall-clock second and per CPU second of ``fn()``.

    The CPU-time rate (all threads of the process) is what one dedicated core
    delivers; it stays meaningful when other processes share the machine.
    """
    best_wall = best_cpu = np.inf
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        best_wall = min(best_wall, time.perf_counter() - w0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return n_normals / best_wall, n_normals / best_cpu


def main():
    """Print normals/s of each variant and the ratios to NumPy's generator."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--particles", type=int, default=1 << 16)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--chunk", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--asm", action="store_true", help="report SIMD registers in the kernel"
    )
    args = parser.parse_args()
    n, steps = args.particles, args.steps
    seed = np.uint64(2024)

    gen = np.random.default_rng(0)
    m = 1 << 22
    rates = {
        "(a) numpy default_rng.standard_normal": _rate(
            lambda: gen.standard_normal(m), m, args.repeat
        )
    }
    streams = np.arange(1 << 14)
    rates["(b) numpy Philox4x32-10 + Box-Muller"] = _rate(
        lambda: rng.normals(seed, streams, 0, 256), streams.size * 256, args.repeat
    )

    W = np.zeros((2, n))
    em_noise_kernel(seed, W, 0, 1, args.chunk)  # compile
    threads = min(2, numba.config.NUMBA_NUM_THREADS)
    for t in (threads, 1):
        numba.set_num_threads(t)
        rates[f"({'c' if t == threads else 'd'}) numba kernel, {t} thread(s)"] = _rate(
            lambda: em_noise_kernel(seed, W, 1, steps, args.chunk),
            2 * n * steps,
            args.repeat,
        )
    numba.set_num_threads(threads)
    libm_noise_kernel(seed, W, 0, 1, args.chunk)  # compile
    rates[f"(e) numba libm Box-Muller, {threads} thread(s)"] = _rate(
        lambda: libm_noise_kernel(seed, W, 1, steps, args.chunk),
        2 * n * steps,
        args.repeat,
    )

    base = next(iter(rates.values()))[0]
    print(
        f"SVML in use: {numba.config.USING_SVML}; particles {n}, steps {steps}, "
        f"chunk {args.chunk}; "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    )
    print(
        "per CPU-s: normals per second of process CPU time (all threads), "
        "i.e. the rate of one dedicated core"
    )
    print(f"{'variant':45s} {'normals/s':>10s} {'ratio':>7s} {'per CPU-s':>10s}")
    for name, (wall, cpu) in rates.items():
        print(f"{name:45s} {wall:10.3e} {wall / base:7.2f} {cpu:10.3e}")
    if args.asm:
        for kernel in (em_noise_kernel, libm_noise_kernel):
            lines = kernel.inspect_asm(kernel.signatures[0]).splitlines()
            counts = ", ".join(
                f"{reg} {sum(reg in line for line in lines)}"
                for reg in ("zmm", "ymm", "xmm")
            )
            print(f"{kernel.__name__}: instructions using {counts}")


if __name__ == "__main__":
    main()
