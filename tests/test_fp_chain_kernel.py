"""The CUDA C of the Fokker-Planck split solves, run without a GPU.

`chains.HOST` is the device kernel's own function (`chains.SOLVE_CHAIN`) compiled for the
host with the system C compiler (``-ffp-contract=off``: no fused multiply-adds, as on the
device with `chains.OPTIONS`); it must give the NumPy chain sweep's numbers, which
`test_fokker_planck_gpu.py` checks against the CPU solver. Where ``nvcc`` is installed the
kernel itself is also compiled to PTX with `chains.OPTIONS`, and the PTX is checked to
round every product and difference separately.
"""

import ctypes
import re
import shutil
import subprocess

import numpy as np
import pytest

import sdesim as sd
from sdesim.fokker_planck.arrays import ArrayModules
from sdesim.fokker_planck.chains import HOST, KERNEL, OPTIONS, ChainSolver, chain_starts
from sdesim.fokker_planck.split import SplitStepper

CC = shutil.which("cc") or shutil.which("gcc")


@pytest.fixture(scope="module")
def host_kernel(tmp_path_factory):
    if CC is None:
        pytest.skip("no C compiler")
    d = tmp_path_factory.mktemp("chains")
    (d / "chains.c").write_text(HOST)
    cmd = [CC, "-O2", "-ffp-contract=off", "-shared", "-fPIC", "-o", str(d / "chains.so"), str(d / "chains.c")]
    subprocess.run(cmd, check=True)
    lib = ctypes.CDLL(str(d / "chains.so"))
    lib.chain_solve.restype = None
    return lib.chain_solve


def ptr(a, ctype):
    return a.ctypes.data_as(ctypes.POINTER(ctype))


@pytest.mark.filterwarnings("ignore::sdesim.fokker_planck.BoundaryMassWarning",
                            "ignore::sdesim.fokker_planck.ResolutionWarning")
@pytest.mark.parametrize("shape", [(30, 25), (9, 8, 7)])
def test_host_compiled_kernel_equals_numpy_sweep(host_kernel, shape):
    """Every link direction (axis and diagonal chains): equal to the last bit."""
    g = sd.Grid([(-2.0, 2.0)] * len(shape), shape)
    loss = sd.Loss("(x**2 - 1)**2 + 2*y**2 + 0.5*x*y" + (" + z**2 + 0.3*x*z" if len(shape) == 3 else ""))
    D = 0.2 * np.array([[1.0, 0.3], [0.3, 1.0]]) if len(shape) == 2 else 0.07 * np.eye(3) + 0.02
    fp = sd.FokkerPlanck(loss, grid=g, diffusion=D)
    stepper = SplitStepper(fp.operator, 0.05, 1.0)
    assert stepper.strided is not None
    rng = np.random.default_rng(0)
    for link, factors in zip(fp.operator.links, stepper.factors):
        s, mult, inv, upper = factors
        b = rng.random(int(np.prod(shape)))
        expected = ChainSolver(shape, link.offset, factors, ArrayModules.numpy()).solve(b.copy())
        start, length = chain_starts(shape, link.offset)
        start, length = start.astype(np.int64), length.astype(np.int32)
        arrays = [np.ascontiguousarray(a, dtype=float) for a in (mult, inv, upper)]
        host_kernel(*(ptr(a, ctypes.c_double) for a in arrays), ptr(start, ctypes.c_longlong),
                    ptr(length, ctypes.c_int), ctypes.c_longlong(s), ctypes.c_int(start.size),
                    ptr(b, ctypes.c_double))
        np.testing.assert_array_equal(b, expected)


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
def test_device_kernel_compiles_to_ptx_without_fused_multiply_add(tmp_path):
    """With ``--fmad=false`` no ``fma`` and every f64 ``mul``/``sub``/``add`` carries ``.rn``: PTX
    arithmetic without a rounding modifier may still be fused by ptxas (the default gives ``mul.f64``)."""
    (tmp_path / "chains.cu").write_text(KERNEL)
    cmd = ["nvcc", "-ptx", *OPTIONS, "-o", str(tmp_path / "chains.ptx"), str(tmp_path / "chains.cu")]
    run = subprocess.run(cmd, check=False, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    ptx = (tmp_path / "chains.ptx").read_text()
    assert ".entry chain_solve" in ptx
    assert "fma." not in ptx
    arithmetic = re.findall(r"\b(?:mul|sub|add)(?:\.\w+)*\.f64\b", ptx)
    assert len(arithmetic) >= 4 and all(".rn." in op for op in arithmetic), sorted(set(arithmetic))
