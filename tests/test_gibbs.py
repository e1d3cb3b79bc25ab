"""Long isotropic SGD-diffusion runs reproduce the Gibbs density exp(-C/T) (docs/theory.md#fokker-planck).

Loss: the demo double well, tilted so that the two wells differ,
``C = (x^2 - 1)^2 + 2 y^2 + x y / 2 + 0.15 x``, at ``T = s lr / 2B = 0.25``
(``lr = 0.1``, ``B = 1``, noise scale ``s = 5``). Barriers are 3.5 T and 4.7 T, so
particles hop between the wells (a quarter of them change sides during a run).

Reference: the Gibbs expectations by quadrature on a 1201 x 1001 grid over
[-3, 3] x [-2.5, 2.5] (Riemann sums of a smooth integrand negligible on the
boundary, e^-50: error far below the statistical one).

Statistics: 10000 particles started from the Gibbs density itself (grid cells drawn
with their probabilities, uniform within a cell), so the population of the two wells
is right from the start and a wrong dynamic shows as drift away from it; time
averages over t in [2, 40] per particle, standard errors from the spread of the
per-particle averages (independent particles: the slow inter-well autocorrelation,
time ~30, is accounted for). Tolerance 5 SE per number (15 numbers).

Discretisation: weak order-2 scheme at dt = 0.01, bias O(dt^2) below the statistical
errors (at dt = 0.02 no moment is more than 1.4 SE from the quadrature). For
contrast, Euler-Maruyama at dt = 0.01 is off by 8 SE in E[y^2] and 5 SE in E[x^2]:
its O(dt) bias is resolved by this test.
"""

import itertools

import numpy as np
import pytest

import sdesim as sd

T = 0.25
TILT = 0.15
Z = 5.0
N = 10_000


def cost(x, y):
    return (x**2 - 1) ** 2 + 2 * y**2 + 0.5 * x * y + TILT * x


@pytest.fixture(scope="module")
def gibbs():
    gx = np.linspace(-3.0, 3.0, 1201)
    gy = np.linspace(-2.5, 2.5, 1001)
    X, Y = np.meshgrid(gx, gy, indexing="ij")
    C = cost(X, Y)
    P = np.exp(-(C - C.min()) / T)
    P /= P.sum()
    return gx, gy, X, Y, P


@pytest.fixture(scope="module")
def run(gibbs):
    gx, gy, X, Y, P = gibbs
    rng = np.random.default_rng(0)
    cells = rng.choice(P.size, size=N, p=P.ravel())
    w0 = np.stack([X.ravel()[cells], Y.ravel()[cells]], axis=1)
    w0 += rng.uniform(-0.5, 0.5, size=(N, 2)) * [gx[1] - gx[0], gy[1] - gy[0]]
    loss = sd.Loss(f"(x**2 - 1)**2 + 2*y**2 + 0.5*x*y + {TILT}*x")
    dyn = sd.SGDDiffusion(lr=0.1, batch_size=1, noise_scale=5.0)
    assert dyn.temperature() == pytest.approx(T)
    res = sd.simulate(loss, dyn, w0=w0, n_particles=N, t_end=40.0, dt=0.01, record_every=50,
                      integrator="weak2", backend="numba", seed=13)
    assert not res.diverged.any()
    return res


def compare(values, expected):
    """``values`` (T, N): per-particle time averages against ``expected``; returns (estimate, SE)."""
    per = values.mean(axis=0)
    est, se = per.mean(), per.std(ddof=1) / np.sqrt(per.size)
    assert se > 0
    assert abs(est - expected) < Z * se, (est, expected, se, (est - expected) / se)
    return est, se


def test_both_wells_visited(run):
    x = run.w[:, :, 0]
    assert np.mean(np.sign(x[0]) != np.sign(x[-1])) > 0.1
    assert np.mean((x > 0).any(axis=0) & (x < 0).any(axis=0)) > 0.2


def test_gibbs_moments(gibbs, run):
    _, _, X, Y, P = gibbs
    w = run.w[run.t >= 2.0]
    x, y = w[..., 0], w[..., 1]
    expect = lambda f: float(np.sum(f(X, Y) * P))
    p_right, se = compare(x > 0, expect(lambda a, b: a > 0))
    assert 0.2 < p_right < 0.3 and se < 0.005          # the tilt matters and is resolved
    compare(x, expect(lambda a, b: a))
    compare(x**2, expect(lambda a, b: a**2))
    compare(y**2, expect(lambda a, b: b**2))
    compare(x * y, expect(lambda a, b: a * b))
    # the x y coupling tilts the valleys: E[xy] < 0, resolved
    assert expect(lambda a, b: a * b) < -0.1


def test_gibbs_histogram(gibbs, run):
    """Probabilities of 10 bins of width 0.3 in x (the tails folded into the end bins)."""
    _, _, X, _, P = gibbs
    edges = np.linspace(-1.5, 1.5, 11)
    edges[0], edges[-1] = -np.inf, np.inf
    x = run.w[run.t >= 2.0][..., 0]
    for lo, hi in itertools.pairwise(edges):
        compare((x >= lo) & (x < hi), float(P[(X >= lo) & (X < hi)].sum()))
