r"""Counter-based random numbers: Philox4x32-10 and Box-Muller, in Numba and NumPy.

Every number is a pure function of ``(seed, stream, counter)``, three unsigned
64-bit integers (``stream``: the particle index; ``counter``: e.g.
``step * pairs_per_step + j``), so an ensemble gives the same paths on any
number of threads, in any order, on any backend.

Generator
---------
One Philox4x32-10 block (Salmon, Moraes, Dror & Shaw, "Parallel random numbers:
as easy as 1, 2, 3", SC 2011; the Random123 reference) maps the 128-bit counter
``(counter_lo, counter_hi, stream_lo, stream_hi)`` and the 64-bit key
``(seed_lo, seed_hi)`` to 128 random bits through ten rounds of

.. math::

    (c_0, c_1, c_2, c_3) \mapsto
    (\mathrm{hi}(M_1 c_2) \oplus c_1 \oplus k_0,\ \mathrm{lo}(M_1 c_2),\
     \mathrm{hi}(M_0 c_0) \oplus c_3 \oplus k_1,\ \mathrm{lo}(M_0 c_0)),

with 32x32 -> 64-bit products, ``M0 = 0xD2511F53``, ``M1 = 0xCD9E8D57`` and
the key bumped by the Weyl constants ``(0x9E3779B9, 0xBB67AE85)`` between
rounds. It is a keyed bijection on 128-bit blocks; from 7 rounds up it passes
TestU01 BigCrush with counters stepped in any of their words and many keys
(Salmon et al.), and 10 rounds is the standard safety margin. It is cuRAND's
``Philox4_32_10`` (NumPy's ``Philox`` is the 4x64 sibling). Chosen over a 64-bit
mixer (SplitMix64 or the murmur3 finaliser over a hashed key) because its
quality is established by the literature rather than by our own tests, and
its 32-bit multiplies map onto ``vpmuludq`` (AVX2/AVX-512) and onto CUDA's
``__umulhi``, so a GPU backend can reproduce it bit for bit. The two output
words are ``x0 = c0 | c1 << 32`` and ``x1 = c2 | c3 << 32``.
This layout reproduces the Random123 known-answer vectors.

Normals (Box-Muller)
--------------------
With :math:`u_1 = (\lfloor x_0 / 2^{11} \rfloor + 1)\,2^{-53} \in (0, 1]` and
:math:`u_2 = \lfloor x_1 / 2^{11} \rfloor\,2^{-53} \in [0, 1)`,

.. math::

    z_0 = \sqrt{-2 \ln u_1}\,\cos 2\pi u_2, \qquad
    z_1 = \sqrt{-2 \ln u_1}\,\sin 2\pi u_2

are independent N(0, 1) (tails cut at :math:`\sqrt{106 \ln 2} = 8.57`, a mass of
:math:`2^{-53}`). ``ln`` is the fdlibm/musl algorithm (reduction to
:math:`[\sqrt2/2, \sqrt2)`, degree-14 polynomial in :math:`s = f/(2+f)`, error
< 1 ulp). The angle is reduced exactly in integers, :math:`4 u_2 = q + r` with
:math:`q \in \{0..3\}`, :math:`r \in [-1/2, 1/2)`, and ``sin``/``cos`` of
:math:`x = r\pi/2 \in [-\pi/4, \pi/4)` use the fdlibm kernels
(:math:`|\text{error}| < 2^{-58}`); :math:`x` carries one rounding of the
product, which only perturbs the uniform angle by 1e-16 relative. The quadrant
swap and signs are integer operations on the IEEE bits. Overall ``z`` is within
1e-15 of the exact Box-Muller value of its ``(u_1, u_2)`` (largest error 8.9e-16
in 40,000 values checked against 100-bit arithmetic), far below any statistical
resolution (the standard error of a mean of 1e8 normals is 1e-4).

Implementation
--------------
The functions below contain only integer operations, ``+ - * /``, ``sqrt`` and
bit reinterpretation, no branches and no libm calls: LLVM vectorises a particle
loop that calls them (SVML is not needed), and the same source run by NumPy
on ``uint64`` arrays (through ``.py_func``) gives bit-identical results, since
every operation is correctly rounded IEEE arithmetic (Numba contracts nothing
into FMAs without ``fastmath``; a kernel compiled with ``fastmath=True`` draws
normals that differ by up to 1e-15 and are no longer bit-identical; a CUDA port
must likewise be built with ``--fmad=false``). No intermediate overflows 64
bits, so NumPy raises no overflow warnings. A counter value must serve one
draw only: ``uniform`` and ``normal_pair`` at the same ``(seed, stream,
counter)`` share the Philox block; give each purpose its own counter range.

In a kernel, call :func:`normal_pair` in the innermost loop over particles and
index the state through slice views counted from 0 (``x = W[d, lo:hi]``,
``for i in range(x.shape[0])``, stream ``lo + i``): an index from
``range(lo, hi)`` may be negative as far as LLVM knows, and Numba's wraparound
select then blocks vectorisation. Pass seeds of 2^63 and above as ``np.uint64``.
Numba's on-disk cache of a calling kernel does not see edits to this module:
include :data:`VERSION` in the cache key of generated kernels.
"""

import math

import numba
import numpy as np

from sdesim.errors import ConfigError

VERSION = 1
"""Version of the output streams; bumped whenever any output bit changes."""

__all__ = [
    "VERSION",
    "normal_pair",
    "normal_pairs",
    "normals",
    "philox4x32",
    "random_words",
    "uniform",
    "uniforms",
]

_M32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)
_PHILOX_M0 = np.uint64(0xD2511F53)
_PHILOX_M1 = np.uint64(0xCD9E8D57)
_PHILOX_W0 = np.uint64(0x9E3779B9)
_PHILOX_W1 = np.uint64(0xBB67AE85)

_SHIFT11 = np.uint64(11)
_ONE_U64 = np.uint64(1)
_TWO_M53 = 2.0**-53

# fdlibm / musl log: reduction constants and the Lg1..Lg7 minimax coefficients
_LOG_BIAS = np.uint64(0x3FF00000 - 0x3FE6A09E)
_LOG_MANT = np.uint64(0x000FFFFF)
_LOG_SQRT_HALF_HI = np.uint64(0x3FE6A09E)
_SHIFT20 = np.uint64(20)
_EXP_BIAS = np.int64(0x3FF)
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_LG1 = 6.666666666666735130e-01
_LG2 = 3.999999999940941908e-01
_LG3 = 2.857142874366239149e-01
_LG4 = 2.222219843214978396e-01
_LG5 = 1.818357216161805012e-01
_LG6 = 1.531383769920937332e-01
_LG7 = 1.479819860511658591e-01

# fdlibm / musl __sin and __cos kernels on [-pi/4, pi/4]
_S1 = -1.66666666666666324348e-01
_S2 = 8.33333333332248946124e-03
_S3 = -1.98412698298579493134e-04
_S4 = 2.75573137070700676789e-06
_S5 = -2.50507602534068634195e-08
_S6 = 1.58969099521155010221e-10
_C1 = 4.16666666666666019037e-02
_C2 = -1.38888888888741095749e-03
_C3 = 2.48015872894767294178e-05
_C4 = -2.75573143513906633035e-07
_C5 = 2.08757232129817482790e-09
_C6 = -1.13596475577881948265e-11

# angle reduction: 4 u2 = q + r, x = r pi/2 with r = r_int 2^-51
_HALF_QUADRANT = np.int64(1 << 50)
_SHIFT51 = np.int64(51)
_QUADRANT_MASK = np.int64(3)
_PI_2_SCALED = (np.pi / 2) * 2.0**-51
_ALL_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)
_SIGN_SHIFT = np.uint64(63)


@numba.njit(inline="always", cache=True)
def _philox_round(c0, c1, c2, c3, k0, k1):
    p0 = _PHILOX_M0 * c0
    p1 = _PHILOX_M1 * c2
    return (
        (p1 >> _SHIFT32) ^ c1 ^ k0,
        p1 & _M32,
        (p0 >> _SHIFT32) ^ c3 ^ k1,
        p0 & _M32,
    )


@numba.njit(inline="always", cache=True)
def philox4x32(seed, stream, counter):
    """Philox4x32-10 block of ``(seed, stream, counter)`` as two 64-bit words.

    Parameters
    ----------
    seed, stream, counter : uint64 or int64 (Numba) / uint64 arrays (NumPy)
        Key and the two halves of the 128-bit counter; int64 values are
        reinterpreted modulo 2^64.

    Returns
    -------
    x0, x1 : uint64
        ``x0 = c0 | c1 << 32``, ``x1 = c2 | c3 << 32`` of the output block
        ``(c0, c1, c2, c3)``.
    """
    s = np.uint64(seed)
    q = np.uint64(stream)
    n = np.uint64(counter)
    k0 = s & _M32
    k1 = s >> _SHIFT32
    c0, c1, c2, c3 = n & _M32, n >> _SHIFT32, q & _M32, q >> _SHIFT32
    c0, c1, c2, c3 = _philox_round(c0, c1, c2, c3, k0, k1)
    k0, k1 = (k0 + _PHILOX_W0) & _M32, (k1 + _PHILOX_W1) & _M32
    c0, c1, c2, c3 = _philox_round(c0, c1, c2, c3, k0, k1)
    k0, k1 = (k0 + _PHILOX_W0) & _M32, (k1 + _PHILOX_W1) & _M32
    c0, c1, c2, c3 = _philox_round(c0, c1, c2, c3, k0, k1)
    k0, k1 = (k0 + _PHILOX_W0) & _M32, (k1 + _PHILOX_W1) & _M32
    c0, c1, c2, c3 = _philox_round(c0, c1, c2, c3, k0, k1)
    k0, k1 = (k0 + _PHILOX_W0) & _M32, (k1 + _PHILOX_W1) & _M32
    c0, c1, c2, c3 = _philox_round(c0, c1, c2, c3, k0, k1)
    k0, k1 = (k0 + _PHILOX_W0) & _M32, (k1 + _PHILOX_W1) & _M32
    c0, c1, c2, c3 = _philox_round(c0, c1, c2, c3, k0, k1)
    k0, k1 = (k0 + _PHILOX_W0) & _M32, (k1 + _PHILOX_W1) & _M32
    c0, c1, c2, c3 = _philox_round(c0, c1, c2, c3, k0, k1)
    k0, k1 = (k0 + _PHILOX_W0) & _M32, (k1 + _PHILOX_W1) & _M32
    c0, c1, c2, c3 = _philox_round(c0, c1, c2, c3, k0, k1)
    k0, k1 = (k0 + _PHILOX_W0) & _M32, (k1 + _PHILOX_W1) & _M32
    c0, c1, c2, c3 = _philox_round(c0, c1, c2, c3, k0, k1)
    k0, k1 = (k0 + _PHILOX_W0) & _M32, (k1 + _PHILOX_W1) & _M32
    c0, c1, c2, c3 = _philox_round(c0, c1, c2, c3, k0, k1)
    return c0 | (c1 << _SHIFT32), c2 | (c3 << _SHIFT32)


@numba.njit(inline="always", cache=True)
def _log_unit(u):
    """Natural log of ``u`` in ``[2^-1022, 1]`` (fdlibm algorithm, < 1 ulp)."""
    bits = np.float64(u).view(np.uint64)
    hx = (bits >> _SHIFT32) + _LOG_BIAS
    dk = np.float64(np.int64(hx >> _SHIFT20) - _EXP_BIAS)
    hx = (hx & _LOG_MANT) + _LOG_SQRT_HALF_HI
    f = np.uint64((hx << _SHIFT32) | (bits & _M32)).view(np.float64) - 1.0
    hfsq = 0.5 * f * f
    s = np.divide(f, 2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
    t2 = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
    r = t2 + t1
    return s * (hfsq + r) + dk * _LN2_LO - hfsq + f + dk * _LN2_HI


@numba.njit(inline="always", cache=True)
def _cos_sin_turn(w):
    """``cos`` and ``sin`` of ``2 pi w 2^-53`` for an integer ``0 <= w < 2^53``."""
    q = (w + _HALF_QUADRANT) >> _SHIFT51
    x = np.float64(w - (q << _SHIFT51)) * _PI_2_SCALED
    z = x * x
    w2 = z * z
    rs = _S2 + z * (_S3 + z * _S4) + z * w2 * (_S5 + z * _S6)
    sin_x = x + z * x * (_S1 + z * rs)
    rc = z * (_C1 + z * (_C2 + z * _C3)) + w2 * w2 * (_C4 + z * (_C5 + z * _C6))
    hz = 0.5 * z
    one_hz = 1.0 - hz
    cos_x = one_hz + (((1.0 - one_hz) - hz) + z * rc)
    # rotate by q quarter turns: swap for odd q, then flip signs
    qu = np.uint64(q & _QUADRANT_MASK)
    bc = np.float64(cos_x).view(np.uint64)
    bs = np.float64(sin_x).view(np.uint64)
    diff = (bc ^ bs) & ((qu & _ONE_U64) * _ALL_ONES)
    flip_c = (((qu + _ONE_U64) >> _ONE_U64) & _ONE_U64) << _SIGN_SHIFT
    flip_s = ((qu >> _ONE_U64) & _ONE_U64) << _SIGN_SHIFT
    return (
        np.uint64(bc ^ diff ^ flip_c).view(np.float64),
        np.uint64(bs ^ diff ^ flip_s).view(np.float64),
    )


@numba.njit(inline="always", cache=True)
def uniform(seed, stream, counter):
    """Uniform on ``[0, 1)`` with 53 random bits: ``(x0 >> 11) * 2^-53``.

    Parameters
    ----------
    seed, stream, counter : uint64 or int64
        See :func:`philox4x32`.

    Returns
    -------
    float64
    """
    x0, _ = philox4x32(seed, stream, counter)
    return np.float64(np.int64(x0 >> _SHIFT11)) * _TWO_M53


@numba.njit(inline="always", cache=True)
def normal_pair(seed, stream, counter):
    """Two independent standard normals (Box-Muller on one Philox block).

    Parameters
    ----------
    seed, stream, counter : uint64 or int64
        See :func:`philox4x32`.

    Returns
    -------
    z0, z1 : float64
        :math:`\\sqrt{-2\\ln u_1}\\,(\\cos 2\\pi u_2, \\sin 2\\pi u_2)`.
    """
    x0, x1 = philox4x32(seed, stream, counter)
    u1 = np.float64(np.int64((x0 >> _SHIFT11) + _ONE_U64)) * _TWO_M53
    radius = np.sqrt(-2.0 * _log_unit(u1))
    c, s = _cos_sin_turn(np.int64(x1 >> _SHIFT11))
    return radius * c, radius * s


@numba.njit(inline="always", cache=True)
def three_point(z):
    r"""Map a standard normal to the three-point variable of the weak order-2 scheme.

    :math:`\{-\sqrt3, 0, \sqrt3\}` with probabilities :math:`\{1/6, 2/3, 1/6\}`
    through the normal CDF :math:`u = \Phi(z)`; its first five moments are the
    Gaussian's (Kloeden & Platen, sec. 14.2).
    """
    u = 0.5 * math.erfc(-z / math.sqrt(2.0))
    return math.sqrt(3.0) * ((1.0 if u > 5.0 / 6.0 else 0.0) - (1.0 if u < 1.0 / 6.0 else 0.0))


_BLOCK = 1 << 14  # elements per NumPy block: temporaries stay in cache


def _as_u64(name, x):
    """Validate non-negative integers (scalar or array) and cast to uint64."""
    a = np.asarray(x)
    if a.dtype.kind not in "iu" and a.size:
        raise TypeError(f"{name} must be integers, got dtype {a.dtype}")
    if a.dtype.kind == "i" and a.size and a.min() < 0:
        raise ConfigError(f"{name} must be non-negative")
    return a.astype(np.uint64)


def _uniform_block(seed, q, n):
    x0, _ = philox4x32.py_func(seed, q, n)
    return ((x0 >> _SHIFT11).astype(np.int64).astype(np.float64) * _TWO_M53,)


def _pair_block(seed, q, n):
    x0, x1 = philox4x32.py_func(seed, q, n)
    u1 = ((x0 >> _SHIFT11) + _ONE_U64).astype(np.int64).astype(np.float64) * _TWO_M53
    radius = np.sqrt(-2.0 * _log_unit.py_func(u1))
    c, s = _cos_sin_turn.py_func((x1 >> _SHIFT11).astype(np.int64))
    return radius * c, radius * s


def _blocked(block, dtype, seed, streams, counters):
    """Evaluate ``block`` on broadcast ``streams`` x ``counters``, block by block."""
    s = _as_u64("seed", seed)
    if s.ndim:
        raise ConfigError("seed must be a scalar")
    q, n = np.broadcast_arrays(
        _as_u64("streams", streams), _as_u64("counters", counters)
    )
    shape = q.shape
    q, n = q.ravel(), n.ravel()
    outs = None
    for lo in range(0, q.size, _BLOCK):
        parts = block(s, q[lo : lo + _BLOCK], n[lo : lo + _BLOCK])
        if outs is None:
            outs = tuple(np.empty(q.size, dtype) for _ in parts)
        for out, part in zip(outs, parts):
            out[lo : lo + _BLOCK] = part
    if outs is None:  # empty broadcast
        outs = tuple(np.empty(0, dtype) for _ in block(s, q, n))
    return tuple(out.reshape(shape) for out in outs)


def random_words(seed, streams, counters):
    """NumPy :func:`philox4x32`, broadcast over ``streams`` and ``counters``.

    Parameters
    ----------
    seed : int
        Key, ``0 <= seed < 2^64``.
    streams, counters : int or array_like of int
        Non-negative, broadcast against each other.

    Returns
    -------
    x0, x1 : ndarray of uint64, broadcast shape
        Bit-identical to the Numba :func:`philox4x32`.
    """
    return _blocked(philox4x32.py_func, np.uint64, seed, streams, counters)


def uniforms(seed, streams, counters):
    """NumPy :func:`uniform`, broadcast over ``streams`` and ``counters``.

    Parameters
    ----------
    seed : int
        Key, ``0 <= seed < 2^64``.
    streams, counters : int or array_like of int
        Non-negative, broadcast against each other.

    Returns
    -------
    ndarray of float64, broadcast shape
        Values in ``[0, 1)``, bit-identical to the Numba :func:`uniform`.
    """
    return _blocked(_uniform_block, np.float64, seed, streams, counters)[0]


def normal_pairs(seed, streams, counters):
    """NumPy :func:`normal_pair`, broadcast over ``streams`` and ``counters``.

    Parameters
    ----------
    seed : int
        Key, ``0 <= seed < 2^64``.
    streams, counters : int or array_like of int
        Non-negative, broadcast against each other.

    Returns
    -------
    z0, z1 : ndarray of float64, broadcast shape
        Bit-identical to the Numba :func:`normal_pair`.
    """
    return _blocked(_pair_block, np.float64, seed, streams, counters)


def normals(seed, streams, counter0, n):
    """``n`` standard normals per stream, laid out pair by pair.

    Parameters
    ----------
    seed : int
        Key, ``0 <= seed < 2^64``.
    streams : array_like of int, shape (S,)
        Non-negative stream (particle) indices.
    counter0 : int
        First counter; the pairs use counters ``counter0 .. counter0 + ceil(n/2) - 1``.
    n : int
        Normals per stream.

    Returns
    -------
    ndarray of float64, shape (S, n)
        ``out[i, 2j] = z0`` and ``out[i, 2j + 1] = z1`` of
        ``normal_pair(seed, streams[i], counter0 + j)``; the last ``z1`` is
        dropped when ``n`` is odd.
    """
    q = _as_u64("streams", streams)
    if q.ndim != 1:
        raise ConfigError("streams must be 1-D")
    counters = _as_u64("counter0", counter0) + np.arange((n + 1) // 2, dtype=np.uint64)
    z0, z1 = normal_pairs(seed, q[:, None], counters[None, :])
    out = np.empty((q.size, 2 * counters.size))
    out[:, 0::2] = z0
    out[:, 1::2] = z1
    return out[:, :n]
