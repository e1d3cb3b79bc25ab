"""Throughput of the counter-based normals (``sdesim.backends.rng``) in normals/s.

Variants: (a) ``numpy.random.default_rng().standard_normal``, (b) the NumPy
Philox/Box-Muller (``rng.normals``), (c) a Numba ``parallel=True`` kernel in the
simulator's shape (state ``W[2, N]``, ``prange`` over particle chunks, steps,
then the vectorised particle loop calling ``rng.normal_pair``) on 2 threads,
and (d) the same kernel on 1 thread.

Run: ``python benchmarks/rng.py [--particles N] [--steps S] [--asm]``.
"""

import argparse
import time

import numba
import numpy as np

from sdesim.backends import rng


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


def _rate(fn, n_normals, repeat):
    """Best-of-``repeat`` normals per second of ``fn()``."""
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return n_normals / best


def main():
    """Print normals/s of each variant and the ratios to NumPy's generator."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--particles", type=int, default=1 << 16)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--chunk", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--asm", action="store_true", help="report SIMD registers in the kernel")
    args = parser.parse_args()
    n, steps = args.particles, args.steps
    seed = np.uint64(2024)

    gen = np.random.default_rng(0)
    m = 1 << 22
    rates = {"(a) numpy default_rng.standard_normal": _rate(lambda: gen.standard_normal(m), m, args.repeat)}
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
            lambda: em_noise_kernel(seed, W, 1, steps, args.chunk), 2 * n * steps, args.repeat
        )
    numba.set_num_threads(threads)

    base = next(iter(rates.values()))
    print(f"SVML in use: {numba.config.USING_SVML}; particles {n}, steps {steps}, chunk {args.chunk}")
    for name, r in rates.items():
        print(f"{name:45s} {r:10.3e} normals/s  x{r / base:6.2f}")
    if args.asm:
        asm = em_noise_kernel.inspect_asm(em_noise_kernel.signatures[0])
        for reg in ("zmm", "ymm", "xmm"):
            print(f"{reg} instructions: {sum(reg in line for line in asm.splitlines())}")


if __name__ == "__main__":
    main()
