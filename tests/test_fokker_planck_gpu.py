"""Fokker-Planck device code path (``backend="cupy"``) against the CPU solver.

Without a GPU the device code runs on ``ArrayModules.numpy()`` (NumPy/SciPy in
place of CuPy/cupyx): the same GMRES, V-cycle, chain sweep and reductions.
Deterministic numerics: linear solves agree to their tolerance (the iterative
solves stop at relative residual ``tol``, so the densities agree to a few
``tol / (h^2 min rho)``); the split step is the same arithmetic as the CPU kernel
(the CUDA kernel is compiled without fused multiply-adds) and agrees to round-off.
Tests marked ``gpu`` run the same checks on a CUDA device.
"""

import numpy as np
import pytest

import sdesim as sd
from sdesim.errors import BackendUnavailableError, ConfigError, UnsupportedError
from sdesim.fokker_planck import PositivityWarning, steady
from sdesim.fokker_planck.arrays import ArrayModules
from sdesim.fokker_planck.chains import chain_starts

WELL = "(x**2 - 1)**2 + 2*y**2 + 0.5*x*y"
D2 = 0.2 * np.array([[1.0, 0.5], [0.5, 1.0]])


def cuda_count():
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount()
    except Exception:  # noqa: BLE001 (no cupy, no driver, or no device)
        return 0


pytestmark = pytest.mark.filterwarnings("ignore::sdesim.fokker_planck.BoundaryMassWarning",
                                        "ignore::sdesim.fokker_planck.ResolutionWarning")
gpu = pytest.mark.skipif(cuda_count() == 0, reason="needs a CUDA device (cupy.cuda.runtime.getDeviceCount)")


def pair(backend, shape=(48, 48), **kw):
    """The CPU solver (direct) and the device path with ``backend`` on the same problem."""
    g = sd.Grid([(-2.0, 2.0)] * len(shape), shape)
    loss = sd.Loss(WELL if len(shape) == 2 else WELL + " + z**2 + 0.3*x*z")
    kw.setdefault("diffusion", D2 if len(shape) == 2 else 0.07 * np.eye(3) + 0.03)
    cpu = sd.FokkerPlanck(loss, grid=g, solver="direct", tol=1e-12, **kw)
    dev = sd.FokkerPlanck(loss, grid=g, tol=1e-12, backend=backend, **kw)
    return g, cpu, dev


def check_steady_state(backend):
    g, cpu, dev = pair(backend)
    a, b = cpu.steady_state(), dev.steady_state()      # non-equilibrium: no closed form
    assert np.abs(a - b).sum() * g.cell_volume < 1e-8


def check_split(backend, shape):
    g, cpu, dev = pair(backend, shape)
    rho0 = g.gaussian([1.0] + [0.0] * (g.dim - 1), 0.1 * np.eye(g.dim))
    a = cpu.evolve(rho0, 0.2, 0.02, method="split", record=3)
    b = dev.evolve(rho0, 0.2, 0.02, method="split", record=3)
    assert isinstance(b.rho, np.ndarray) and b.rho.shape == a.rho.shape
    np.testing.assert_allclose(b.rho, a.rho, rtol=0, atol=1e-12 * a.rho.max())


def test_steady_state_matches_cpu():
    check_steady_state(ArrayModules.numpy())


def test_split_matches_cpu_kernel_2d_and_3d():
    """Axis and diagonal link chains (9 directions in 3D): round-off agreement."""
    check_split(ArrayModules.numpy(), (48, 48))
    check_split(ArrayModules.numpy(), (12, 10, 11))


@pytest.mark.parametrize("method", ["backward-euler", "tr-bdf2"])
def test_implicit_steps_match_cpu(method):
    g, cpu, dev = pair(ArrayModules.numpy())
    rho0 = g.gaussian([1.0, 0.0], 0.1 * np.eye(2))
    a = cpu.evolve(rho0, 0.1, 0.02, method=method).rho[-1]
    b = dev.evolve(rho0, 0.1, 0.02, method=method).rho[-1]
    assert np.abs(a - b).sum() * g.cell_volume < 1e-9
    assert abs(g.mass(b) - 1) < 1e-9


def test_mfpt_matches_cpu():
    g, cpu, dev = pair(ArrayModules.numpy())
    target = lambda X: X[..., 0] > 0.9
    a, b = cpu.mean_first_passage_time(target), dev.mean_first_passage_time(target)
    assert np.all(b[target(g.centers)] == 0)
    assert np.abs(b / np.where(a > 0, a, 1) - np.where(a > 0, 1, 0)).max() < 1e-8


def test_functionals_match_cpu():
    g, cpu, dev = pair(ArrayModules.numpy())
    rho = cpu.steady_state()
    rho0 = g.gaussian([1.0, 0.0], 0.1 * np.eye(2))
    np.testing.assert_array_equal(dev.current(rho), cpu.current(rho))     # one function, xp = numpy
    assert dev.kl(rho0, rho) == pytest.approx(cpu.kl(rho0, rho), rel=1e-12)
    assert dev.entropy(rho0) == pytest.approx(cpu.entropy(rho0), rel=1e-12)
    iso_cpu = sd.FokkerPlanck(sd.Loss(WELL), temperature=0.1, grid=g)
    iso_dev = sd.FokkerPlanck(sd.Loss(WELL), temperature=0.1, grid=g, backend=ArrayModules.numpy())
    assert iso_dev.free_energy(rho0) == pytest.approx(iso_cpu.free_energy(rho0), rel=1e-12)
    with pytest.raises(sd.errors.ShapeError):
        dev.kl(rho0[:-1], rho)


def test_steady_state_coarse_grid_matches_cpu():
    """Cell Peclet numbers up to ~25 (100^2 on [-2.5, 2.5]^2, D = 0.1 (I + offdiag 0.5)): the device
    V-cycle on the symmetrised system fails there and the solve falls back to the pinned system."""
    g = sd.Grid([(-2.5, 2.5)] * 2, (100, 100))
    kw = {"diffusion": D2 / 2, "grid": g, "tol": 1e-12}
    a = sd.FokkerPlanck(sd.Loss(WELL), solver="direct", **kw).steady_state()
    b = sd.FokkerPlanck(sd.Loss(WELL), backend=ArrayModules.numpy(), **kw).steady_state()
    assert np.abs(a - b).sum() * g.cell_volume < 1e-8


def test_pinned_symmetrised_is_the_similarity_transform():
    _, cpu, _ = pair("cpu")
    L, p = cpu.matrix(), steady.pin_cell(cpu.potential)
    ref = steady.reference_density(cpu.potential, cpu.diffusion, 2)
    L0 = L.copy()
    S = steady.pinned_symmetrised(L, p, ref)
    assert (L != L0).nnz == 0 and np.array_equal(L.indptr, L0.indptr)      # L is left intact
    A, b = steady.pinned_system(L, p)
    root = np.sqrt(ref)
    np.testing.assert_allclose(S.toarray(), (A.toarray() * root) / root[:, None], rtol=1e-14, atol=0)
    assert b[p] == 1 and ref[p] == 1 and ref.max() == 1


def test_chains_cover_every_cell_once():
    shape = (5, 4, 6)
    n = int(np.prod(shape))
    strides = (24, 6, 1)
    for offset in [(1, 0, 0), (0, 0, 1), (1, 1, 0), (1, -1, 0), (0, 1, -1), (1, 0, -1)]:
        start, length = chain_starts(shape, offset)
        s = int(np.dot(offset, strides))
        cells = np.concatenate([c + s * np.arange(m) for c, m in zip(start, length)])
        assert np.array_equal(np.sort(cells), np.arange(n)), offset


def test_split_needs_non_negative_rates_on_device():
    """The device refuses; the advice of its message (``backend='cpu'``) runs (LAPACK chains, mass kept)."""
    g = sd.Grid([(-2.5, 2.5), (-2.5, 2.5)], (20, 10))          # h2 / h1 = 2 > D22 / |D12|
    D = 0.1 * np.array([[1.0, 0.9], [0.9, 1.0]])
    rho0 = g.gaussian([0, 0], np.eye(2))
    with pytest.warns(PositivityWarning):
        fp = sd.FokkerPlanck(sd.Loss(WELL), diffusion=D, grid=g, backend=ArrayModules.numpy())
    with pytest.raises(UnsupportedError, match="non-negative rates.*use backend='cpu'"):
        fp.evolve(rho0, 0.1, 0.05, method="split")
    with pytest.warns(PositivityWarning):
        cpu = sd.FokkerPlanck(sd.Loss(WELL), diffusion=D, grid=g, backend="cpu")
    assert abs(cpu.evolve(rho0, 0.1, 0.05, method="split").mass()[-1] - 1) < 1e-12


def test_backend_errors():
    g = sd.Grid([(-1, 1)], (10,))
    with pytest.raises(ConfigError, match="backend"):
        sd.FokkerPlanck(sd.Loss("x**2"), temperature=0.1, grid=g, backend="gpu")
    for backend in ("cpu", ArrayModules.numpy()):
        with pytest.raises(ConfigError, match="solver must be one of"):
            sd.FokkerPlanck(sd.Loss("x**2"), temperature=0.1, grid=g, solver="bogus", backend=backend)
    with pytest.raises(UnsupportedError, match="solver='direct'.*backend='cpu'"):
        sd.FokkerPlanck(sd.Loss("x**2"), temperature=0.1, grid=g, solver="direct",
                        backend=ArrayModules.numpy())
    for solver in ("auto", "iterative"):
        sd.FokkerPlanck(sd.Loss("x**2"), temperature=0.1, grid=g, solver=solver, backend=ArrayModules.numpy())
    if cuda_count() == 0:
        with pytest.raises(BackendUnavailableError, match=r'pip install "sdesim\[gpu\]"'):
            sd.FokkerPlanck(sd.Loss("x**2"), temperature=0.1, grid=g, backend="cupy")


@pytest.mark.gpu
@gpu
def test_gpu_steady_state_and_split():
    check_steady_state("cupy")
    check_split("cupy", (48, 48))
    check_split("cupy", (12, 10, 11))


@pytest.mark.gpu
@gpu
def test_gpu_implicit_steps_and_functionals():
    g, cpu, dev = pair("cupy")
    rho0 = g.gaussian([1.0, 0.0], 0.1 * np.eye(2))
    a = cpu.evolve(rho0, 0.1, 0.02).rho[-1]
    b = dev.evolve(rho0, 0.1, 0.02).rho[-1]
    assert np.abs(a - b).sum() * g.cell_volume < 1e-9
    rho = cpu.steady_state()
    np.testing.assert_allclose(dev.current(rho), cpu.current(rho), rtol=1e-12, atol=1e-14)
    assert dev.kl(rho0, rho) == pytest.approx(cpu.kl(rho0, rho), rel=1e-12)
