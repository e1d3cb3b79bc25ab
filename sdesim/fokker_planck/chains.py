"""The split solves on the device: one Thomas sweep per lattice chain, in place.

``I - dt L_k`` has the diagonals ``0, +-s`` in flat order (`split`) and couples the
cells of each chain ``c0, c0 + s, ..., c0 + (m - 1) s`` (the cells reached from a
chain start ``c0`` by the link's offset inside the grid) and nothing else. With the
LU factors of `_strided.factor` (multipliers ``mult``, ``inv = 1 / U_cc``, ``upper``)
a solve is, per chain,

.. math:: b_c \\mathrel{-}= \\mathrm{mult}_c\\, b_{c-s} \\;(\\text{forward}), \\qquad
          b_c \\leftarrow (b_c - \\mathrm{upper}_c\\, b_{c+s})\\, \\mathrm{inv}_c \\;(\\text{backward}),

the arithmetic of the CPU kernel, chain after chain instead of in flat order. On a
GPU one thread runs one chain (`KERNEL`, a single launch per direction, no
permutation or padding), compiled with `OPTIONS` (``--fmad=false``: by default NVRTC
lets the compiler contract ``b - m * prev`` into a fused multiply-add, rounded once
instead of twice, which differs from the CPU's result in the last bits); with NumPy
the sweep is vectorised over chains. `HOST` wraps the same C function for the host
compiler, which is how the tests run it without a GPU.
"""

from __future__ import annotations

import numpy as np

SOLVE_CHAIN = r"""
__host__ __device__ void solve_chain(const double* mult, const double* inv, const double* upper,
                                     long long c, int m, long long s, double* b) {
    double prev = b[c];
    for (int j = 1; j < m; ++j) {
        c += s;
        prev = b[c] - mult[c] * prev;
        b[c] = prev;
    }
    prev *= inv[c];
    b[c] = prev;
    for (int j = m - 2; j >= 0; --j) {
        c -= s;
        prev = (b[c] - upper[c] * prev) * inv[c];
        b[c] = prev;
    }
}
"""
"""One chain's Thomas sweep, for the device kernel and (tests) the host."""

KERNEL = SOLVE_CHAIN + r"""
extern "C" __global__ void chain_solve(const double* mult, const double* inv, const double* upper,
                                       const long long* start, const int* length, long long s,
                                       int n_chains, double* b) {
    int k = blockDim.x * blockIdx.x + threadIdx.x;
    if (k < n_chains) solve_chain(mult, inv, upper, start[k], length[k], s, b);
}
"""
HOST = "#define __host__\n#define __device__\n" + SOLVE_CHAIN + r"""
void chain_solve(const double* mult, const double* inv, const double* upper, const long long* start,
                 const int* length, long long s, int n_chains, double* b) {
    for (int k = 0; k < n_chains; ++k) solve_chain(mult, inv, upper, start[k], length[k], s, b);
}
"""
"""The same sweep compiled for the host (one chain after another), so CI checks the CUDA C source."""
THREADS = 128
OPTIONS = ("--fmad=false",)
"""NVRTC (and nvcc) options of `KERNEL`: every product and difference rounded separately, as on the CPU."""


def chain_starts(shape, offset):
    """Flat chain starts (cells whose predecessor ``c - offset`` is off the grid) and lengths."""
    idx = np.indices(shape).reshape(len(shape), -1)
    n = np.array(shape)[:, None]
    o = np.array(offset)[:, None]
    pred = idx - o
    start = np.any((pred < 0) | (pred >= n), axis=0)
    steps = np.where(o > 0, n - idx, np.where(o < 0, idx + 1, np.iinfo(np.int64).max))
    return np.flatnonzero(start), steps.min(axis=0)[start].astype(np.int32)


class ChainSolver:
    """In-place solves with the factors ``(s, mult, inv, upper)`` of one link direction."""

    def __init__(self, shape, offset, factors, mods):
        s, mult, inv, upper = factors
        self.mods, self.s = mods, s
        self.mult, self.inv, self.upper = (mods.asarray(a) for a in (mult, inv, upper))
        start, length = chain_starts(shape, offset)
        xp = mods.xp
        self.start, self.length = xp.asarray(start, dtype=xp.int64), xp.asarray(length, dtype=xp.int32)
        if mods.name == "cupy":
            self.kernel = xp.RawKernel(KERNEL, "chain_solve", options=OPTIONS)
        else:
            order = np.argsort(-length, kind="stable")       # longest first: active chains form a prefix
            self.start, self.length = self.start[order], self.length[order]
            self.kernel = None

    def solve(self, b):
        """Overwrite the flat device array ``b`` with ``(I - dt L_k)^{-1} b``."""
        n_chains = int(self.start.size)
        if self.kernel is not None:
            blocks = (n_chains + THREADS - 1) // THREADS
            self.kernel((blocks,), (THREADS,), (self.mult, self.inv, self.upper, self.start, self.length,
                                                np.int64(self.s), np.int32(n_chains), b))
            return b
        m = int(self.length[0])
        active = [int(np.count_nonzero(self.length > j)) for j in range(m)]
        for j in range(1, m):
            c = self.start[: active[j]] + j * self.s
            b[c] -= self.mult[c] * b[c - self.s]
        last = self.start + (self.length.astype(np.int64) - 1) * self.s
        b[last] *= self.inv[last]
        for j in range(m - 2, -1, -1):
            c = self.start[: active[j + 1]] + j * self.s
            b[c] = (b[c] - self.upper[c] * b[c + self.s]) * self.inv[c]
        return b
