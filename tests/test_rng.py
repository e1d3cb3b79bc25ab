"""Counter-based RNG (``sdesim.rng``): exactness, identity, statistics.

Statistical tolerances are 5 standard errors of the named estimator at the
stated sample count and fixed seeds; for N(0, 1) and n samples the standard
errors are ``sqrt(1/n)`` (mean), ``sqrt(2/n)`` (variance), ``sqrt(6/n)``
(skewness), ``sqrt(24/n)`` (excess kurtosis) and ``sqrt(1/n)`` (a correlation
coefficient of independent samples).
"""

import numba
import numpy as np
import pytest
from scipy import stats

from sdesim import rng

U64 = np.uint64
N_STREAMS, N_PER_STREAM = 1000, 1000  # 1e6 normals


@numba.njit(cache=True)
def _fill(seed, streams, counter):
    """Numba draws for each stream at one counter: z0, z1, uniform, both words."""
    n = streams.shape[0]
    z0, z1, u = np.empty(n), np.empty(n), np.empty(n)
    x0, x1 = np.empty(n, np.uint64), np.empty(n, np.uint64)
    for i in range(n):
        z0[i], z1[i] = rng.normal_pair(seed, streams[i], counter)
        u[i] = rng.uniform(seed, streams[i], counter)
        x0[i], x1[i] = rng.philox4x32(seed, streams[i], counter)
    return z0, z1, u, x0, x1


@numba.njit(parallel=True, cache=True)
def _ensemble(seed, n, steps, chunk):
    """Sum of ``steps`` normal pairs per particle, prange over particle chunks."""
    out = np.zeros((2, n))
    for c in numba.prange((n + chunk - 1) // chunk):
        lo = c * chunk
        x = out[0, lo : lo + chunk]
        y = out[1, lo : lo + chunk]
        for k in range(steps):
            for i in range(x.shape[0]):
                z0, z1 = rng.normal_pair(seed, lo + i, k)
                x[i] += z0
                y[i] += z1
    return out


@numba.njit(cache=True)
def _moments(seed, n_streams, n_pairs):
    """Power sums of ``2 * n_streams * n_pairs`` normals and tail counts.

    Per-stream accumulators keep the inner loop over streams vectorisable.
    """
    s1, s2, s3, s4 = (
        np.zeros(n_streams),
        np.zeros(n_streams),
        np.zeros(n_streams),
        np.zeros(n_streams),
    )
    tail3, tail4 = np.zeros(n_streams), np.zeros(n_streams)
    for k in range(n_pairs):
        for q in range(n_streams):
            z0, z1 = rng.normal_pair(seed, q, k)
            a, b = z0 * z0, z1 * z1
            s1[q] += z0 + z1
            s2[q] += a + b
            s3[q] += a * z0 + b * z1
            s4[q] += a * a + b * b
            tail3[q] += np.float64(a > 9.0) + np.float64(b > 9.0)
            tail4[q] += np.float64(a > 16.0) + np.float64(b > 16.0)
    return s1.sum(), s2.sum(), s3.sum(), s4.sum(), tail3.sum(), tail4.sum()


@pytest.fixture(scope="module")
def sample():
    """1e6 normals, shape (1000 streams, 1000 per stream), seed 7."""
    return rng.normals(7, np.arange(N_STREAMS), 0, N_PER_STREAM)


def test_known_answer_vectors():
    """Random123 kat_vectors for philox4x32_10 (counter words, key words -> output)."""
    cases = [
        ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
        (
            (0xFFFFFFFF,) * 4,
            (0xFFFFFFFF,) * 2,
            (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD),
        ),
        (
            (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
            (0xA4093822, 0x299F31D0),
            (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
        ),
    ]
    for ctr, key, expected in cases:
        seed = key[0] | key[1] << 32
        stream = ctr[2] | ctr[3] << 32
        counter = ctr[0] | ctr[1] << 32
        x0, x1 = (int(v) for v in rng.philox4x32(U64(seed), U64(stream), U64(counter)))
        assert (x0 & 0xFFFFFFFF, x0 >> 32, x1 & 0xFFFFFFFF, x1 >> 32) == expected
        y0, y1 = rng.random_words(seed, stream, counter)
        assert (int(y0), int(y1)) == (x0, x1)


@pytest.mark.parametrize("seed", [0, 12345, 2**64 - 1])
def test_numpy_and_numba_are_bit_identical(seed):
    streams = np.concatenate(
        [np.arange(20_000, dtype=np.uint64), np.array([2**63, 2**64 - 1], np.uint64)]
    )
    for counter in (0, 17, 2**40 + 3, 2**64 - 1):
        z0, z1, u, x0, x1 = _fill(U64(seed), streams, U64(counter))
        y0, y1 = rng.random_words(seed, streams, counter)
        w0, w1 = rng.normal_pairs(seed, streams, counter)
        np.testing.assert_array_equal(x0, y0)
        np.testing.assert_array_equal(x1, y1)
        np.testing.assert_array_equal(z0.view(np.uint64), w0.view(np.uint64))
        np.testing.assert_array_equal(z1.view(np.uint64), w1.view(np.uint64))
        np.testing.assert_array_equal(
            u.view(np.uint64), rng.uniforms(seed, streams, counter).view(np.uint64)
        )


def test_normals_layout():
    streams = np.array([3, 5])
    out = rng.normals(11, streams, 4, 5)
    assert out.shape == (2, 5)
    for j in range(3):
        z0, z1 = rng.normal_pairs(11, streams, 4 + j)
        np.testing.assert_array_equal(out[:, 2 * j], z0)
        if 2 * j + 1 < 5:
            np.testing.assert_array_equal(out[:, 2 * j + 1], z1)


def test_elementary_functions_are_accurate():
    """log within 1 ulp of np.log; cos/sin within 2^-52 of long-double values."""
    gen = np.random.default_rng(0)
    k = np.concatenate(
        [gen.integers(1, 2**53, 100_000), np.arange(1, 1000), 2**53 - np.arange(1000)]
    )
    u = k.astype(np.float64) * 2.0**-53
    np.testing.assert_array_max_ulp(rng._log_unit.py_func(u), np.log(u), maxulp=1)
    w = np.concatenate(
        [gen.integers(0, 2**53, 100_000), np.arange(1000), 2**53 - 1 - np.arange(1000)]
    )
    w = np.concatenate(
        [w, ((np.arange(-500, 500)[:, None] + (np.arange(5) << 51)) % 2**53).ravel()]
    )
    c, s = rng._cos_sin_turn.py_func(w.astype(np.int64))
    two_pi = 2 * np.longdouble("3.14159265358979323846264338327950288")
    angle = two_pi * np.longdouble(2.0**-53) * w.astype(np.longdouble)
    assert np.max(np.abs(c - np.cos(angle))) <= 2.0**-52
    assert np.max(np.abs(s - np.sin(angle))) <= 2.0**-52


def test_moments_of_1e6_normals(sample):
    z = sample.ravel()
    n = z.size
    assert abs(z.mean()) < 5 * np.sqrt(1 / n)
    assert abs(z.var() - 1) < 5 * np.sqrt(2 / n)
    assert abs(stats.skew(z)) < 5 * np.sqrt(6 / n)
    assert abs(stats.kurtosis(z)) < 5 * np.sqrt(24 / n)


def test_moments_and_tails_of_1e8_normals():
    """No bias visible at 1e8 samples (seed 3): moments and P(|z| > 3), P(|z| > 4)."""
    n_streams, n_pairs = 10_000, 5_000
    n = 2 * n_streams * n_pairs
    s1, s2, s3, s4, tail3, tail4 = _moments(U64(3), n_streams, n_pairs)
    assert abs(s1 / n) < 5 * np.sqrt(1 / n)
    assert abs(s2 / n - 1) < 5 * np.sqrt(2 / n)
    assert abs(s3 / n) < 5 * np.sqrt(15 / n)  # Var z^3 = 15
    assert abs(s4 / n - 3) < 5 * np.sqrt(96 / n)  # Var z^4 = 105 - 9
    for count, x in ((tail3, 3.0), (tail4, 4.0)):
        p = 2 * stats.norm.sf(x)
        assert abs(count - n * p) < 5 * np.sqrt(n * p * (1 - p))


def test_kolmogorov_smirnov(sample):
    assert stats.kstest(sample.ravel(), "norm").pvalue > 1e-4
    u = rng.uniforms(7, np.arange(100_000), 3)
    assert u.min() >= 0.0 and u.max() < 1.0
    assert stats.kstest(u, "uniform").pvalue > 1e-4


def test_independence(sample):
    """Adjacent streams, adjacent counters and the halves of a pair: uncorrelated."""
    tol = 5 / np.sqrt(sample.size / 2)
    pairs = {
        "adjacent streams": (sample[:-1], sample[1:]),
        "adjacent counters": (sample[:, 0:-2:2], sample[:, 2::2]),
        "z0 with z1": (sample[:, 0::2], sample[:, 1::2]),
    }
    for name, (a, b) in pairs.items():
        r = np.corrcoef(a.ravel(), b.ravel())[0, 1]
        assert abs(r) < tol, name


def test_seeds_give_different_streams(sample):
    other = rng.normals(8, np.arange(N_STREAMS), 0, N_PER_STREAM)
    assert np.mean(other == sample) < 1e-5
    r = np.corrcoef(other.ravel(), sample.ravel())[0, 1]
    assert abs(r) < 5 / np.sqrt(sample.size)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 Numba threads")
def test_independent_of_thread_count():
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = _ensemble(U64(5), 10_000, 20, 256)
        numba.set_num_threads(2)
        two = _ensemble(U64(5), 10_000, 20, 256)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(one, two)
    z0, z1 = rng.normal_pairs(5, np.arange(10_000)[:, None], np.arange(20)[None, :])
    np.testing.assert_allclose(
        one, [z0.sum(axis=1), z1.sum(axis=1)], rtol=0, atol=1e-12
    )


def test_particle_loop_vectorises():
    """The branch-free normal_pair lets LLVM vectorise a particle loop."""

    @numba.njit
    def add_noise(seed, x, lo, k):
        for i in range(x.shape[0]):
            z0, z1 = rng.normal_pair(seed, lo + i, k)
            x[i] += z0 * z1

    add_noise(U64(1), np.zeros(8), 0, 0)
    assert "vector.body" in add_noise.inspect_llvm(add_noise.signatures[0])


def test_input_validation():
    with pytest.raises(ValueError):
        rng.normal_pairs(0, [-1], 0)
    with pytest.raises(TypeError):
        rng.normal_pairs(0, [1.5], 0)
    with pytest.raises(ValueError):
        rng.random_words([0, 1], 0, 0)
