"""The PyTorch adapter (``sdesim.nets.torch_adapter``) against the NumPy MLP on identical weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sdesim.errors import ConfigError, FormatError, ShapeError
from sdesim.nets import MLP, Dataset, extract
from sdesim.nets.extract import Extraction, refinement_summary
from sdesim.nets.objective import MLPObjective, Objective
from sdesim.nets.torch_adapter import (
    TorchObjective,
    extract_quadratic_torch,
    mlp_to_torch,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Small problems: one thread is as fast, and immune to other processes on the cores."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

LOSSES = {
    "cross_entropy": torch.nn.functional.cross_entropy,
    "squared": lambda z, y: 0.5 * ((z - torch.nn.functional.one_hot(y, z.shape[1]).to(z.dtype)) ** 2).sum(1).mean(),
}


def _setup(activation, loss, n=60, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6))
    y = rng.integers(0, 3, n)
    net = MLP((6, 5, 4, 3), activation, loss, weight_decay=1e-2)
    w = net.init(seed) + 0.1 * rng.standard_normal(net.n_params)
    module, to_torch = mlp_to_torch(net, w)
    obj = TorchObjective(module, x, y, LOSSES[loss], weight_decay=1e-2, chunk_size=25)
    return rng, x, y, net, w, obj, to_torch


@pytest.mark.parametrize(("activation", "loss"), [("tanh", "cross_entropy"), ("gelu", "squared"),
                                                  ("relu", "cross_entropy")])
def test_products_match_numpy_mlp(activation, loss):
    """Loss, gradient, HVP, per-sample gradients, G v, G^T u and Sigma_1 v agree to 1e-10 relative."""
    rng, x, y, net, w, obj, to_torch = _setup(activation, loss)
    wt = to_torch(w)
    np.testing.assert_array_equal(obj.flat(), wt)
    np.testing.assert_array_equal(to_torch.inverse(wt), w)
    v, u = rng.standard_normal(net.n_params), rng.standard_normal(len(y))
    close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12 * np.abs(b).max())
    close(obj.loss(wt), net.loss(w, x, y))
    close(obj.grad(wt), to_torch(net.grad(w, x, y)))
    close(obj.hvp(wt, to_torch(v)), to_torch(net.hvp(w, x, y, v)))
    close(obj.per_sample_grads(wt), to_torch(net.per_sample_grads(w, x, y)))
    J = net.sample_jacobian(w, x, y)
    close(obj.matvec(wt, to_torch(v)), J.matvec(v))
    close(obj.rmatvec(wt, u), to_torch(J.rmatvec(u)))
    close(obj.covariance_matvec(wt, to_torch(v)), to_torch(J.covariance_matvec(v)))


def test_extraction_matches_numpy_extract():
    """Same weights, no refinement: identical top-4 Hessian and noise eigenvalues, the same basis
    (mapped between layouts; Lanczos fixes each sign by the largest entry) and the same S."""
    _, x, y, net, w, obj, to_torch = _setup("tanh", "cross_entropy")
    ref = extract(net, Dataset(x, y, 3, "tiny"), w, k=4, refine=False)
    ext = extract_quadratic_torch(obj.module, x, y, LOSSES["cross_entropy"], k=4, refine=False, weight_decay=1e-2)
    np.testing.assert_allclose(ext.model.hessian_eigenvalues, ref.model.hessian_eigenvalues, rtol=1e-8)
    np.testing.assert_allclose(ext.noise_eigenvalues, ref.noise_eigenvalues, rtol=1e-8)
    np.testing.assert_allclose(ext.basis, to_torch(ref.basis.T).T, atol=1e-7)
    np.testing.assert_allclose(ext.model.S, ref.model.S, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(ext.report["noise_trace"], ref.report["noise_trace"], rtol=1e-10)
    np.testing.assert_allclose(ext.report["grad_norm"], ref.report["grad_norm"], rtol=1e-10)


def test_refined_extraction_reaches_the_numpy_minimum():
    """L-BFGS from the same start on both: the same minimum (|grad C| < 1e-6) and eigenvalues to 1e-5."""
    _, x, y, net, w, obj, to_torch = _setup("tanh", "cross_entropy")
    ref = extract(net, Dataset(x, y, 3, "tiny"), w, k=3, gtol=1e-9, maxiter=5000)
    ext = extract_quadratic_torch(obj.module, x, y, LOSSES["cross_entropy"], k=3, weight_decay=1e-2,
                                  gtol=1e-9, maxiter=5000)
    assert ext.report["grad_norm"] < 1e-6
    np.testing.assert_allclose(ext.w_star, to_torch(ref.w_star), atol=1e-5)
    np.testing.assert_allclose(ext.model.hessian_eigenvalues, ref.model.hessian_eigenvalues, rtol=1e-5)


def test_bad_shapes():
    _, x, y, net, _, obj, _ = _setup("tanh", "cross_entropy")
    with pytest.raises(ShapeError, match=str(net.n_params)):
        obj.grad(np.zeros(net.n_params + 1))
    with pytest.raises(ShapeError, match="targets"):
        TorchObjective(obj.module, x, y[:-1], LOSSES["squared"])


def test_objective_contract_with_subsets():
    """TorchObjective is an Objective: loss, gradient, HVP, per-sample gradients and G V on a subset
    ``idx`` equal the NumPy MLP's (MLPObjective) on the same samples, to 1e-10."""
    rng, x, y, net, w, obj, to_torch = _setup("tanh", "cross_entropy")
    ref = MLPObjective(net, x, y)
    assert isinstance(obj, Objective) and obj.n_samples == ref.n_samples == 60 and obj.n_params == ref.n_params
    idx, wt = rng.integers(0, 60, 17), to_torch(w)
    v, V = rng.standard_normal(net.n_params), rng.standard_normal((net.n_params, 3))
    close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12 * np.abs(b).max())
    close(obj.loss(wt, idx), ref.loss(w, idx))
    close(obj.loss_and_grad(wt, idx)[1], to_torch(ref.grad(w, idx)))
    close(obj.hvp(wt, to_torch(v), idx), to_torch(ref.hvp(w, v, idx)))
    close(obj.per_sample_grads(wt, idx), to_torch(ref.per_sample_grads(w, idx)))
    close(obj.sample_grad_products(wt, to_torch(V.T).T), ref.sample_grad_products(w, V))
    close(Objective.sample_grad_products(obj, wt, to_torch(V.T).T, chunk_size=7), ref.sample_grad_products(w, V))


def test_user_module_is_not_modified():
    """extract_quadratic_torch works on a float64 copy: the user's float32 module keeps its dtype and
    values and still runs on float32 input."""
    rng = np.random.default_rng(1)
    module = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3))
    before = [p.detach().clone() for p in module.parameters()]
    x, y = rng.standard_normal((40, 4)), rng.integers(0, 3, 40)
    ext = extract_quadratic_torch(module, x, y, torch.nn.functional.cross_entropy, k=2, weight_decay=1e-2,
                                  maxiter=50, progress=False)
    assert ext.w_star.dtype == np.float64
    for p, q in zip(module.parameters(), before):
        assert p.dtype == torch.float32
        assert torch.equal(p, q)
    assert module(torch.zeros(2, 4, dtype=torch.float32)).dtype == torch.float32


def test_refinement_reports_how_far_it_moved():
    """The report holds |dw|, |dw|/|w|, loss and gradient norm before and after (checked against
    the weights themselves), and the printed summary states them."""
    _, x, y, _, w, obj, to_torch = _setup("tanh", "cross_entropy")
    w0 = to_torch(w)
    ext = extract_quadratic_torch(obj.module, x, y, LOSSES["cross_entropy"], k=2, weight_decay=1e-2,
                                  gtol=1e-6, maxiter=500, progress=False)
    r = ext.report
    np.testing.assert_allclose(r["step_norm"], np.linalg.norm(ext.w_star - w0), rtol=1e-12)
    np.testing.assert_allclose(r["step_relative"], r["step_norm"] / np.linalg.norm(w0), rtol=1e-12)
    np.testing.assert_allclose(r["loss_start"], obj.loss(w0), rtol=1e-12)
    np.testing.assert_allclose(r["grad_norm_start"], np.linalg.norm(obj.grad(w0)), rtol=1e-12)
    assert r["loss"] < r["loss_start"] and r["grad_norm"] < 1e-5 < r["grad_norm_start"]
    text = refinement_summary(r)
    assert f"{r['step_norm']:.3g}" in text and f"{r['loss_start']:.4g} -> {r['loss']:.4g}" in text


def _docs_snippet(page, marker):
    """The first ```python block after ``marker`` in ``docs/<page>``."""
    text = (ROOT / "docs" / page).read_text()
    block = text[text.index(marker):].split("```python\n", 1)[1].split("```", 1)[0]
    return block


def test_net_vs_theory_on_a_torch_module_equals_the_mlp_path(tmp_path):
    """The docs' snippet (docs/nets.md, "Re-attaching a saved extraction") run as written: a saved
    torch extraction re-attached to its module and data. With the NumPy extraction mapped to
    the module's layout, real SGD visits the same states up to rounding (same minibatches, gradients
    equal to 1e-12), so every variance matches the MLP path to 1e-6; the simulated model is the same
    model, bit for bit."""
    from sdesim.nets.theory import net_vs_theory

    _, x, y, net, w, obj, to_torch = _setup("tanh", "cross_entropy", n=200)
    ref = extract(net, Dataset(x, y, 3, "tiny"), w, k=3, gtol=1e-8, maxiter=2000, progress=False)
    Extraction(ref.model, to_torch(ref.basis.T).T, to_torch(ref.w_star), ref.noise_eigenvalues,
               to_torch(ref.noise_eigenvectors.T).T, ref.report).save(tmp_path / "tiny_torch")
    module = obj.module
    namespace = {"path": tmp_path / "tiny_torch", "module": module, "x": x, "y": y}
    exec(_docs_snippet("nets.md", "### Re-attaching a saved extraction"), namespace)  # noqa: S102 - our docs
    ours = namespace["rep"]
    mlp = net_vs_theory(ref, objective=MLPObjective(net, x, y), gd_steps=0, **{
        key: ours.settings[key] for key in ("steps", "batches", "directions", "n_particles", "sim_steps",
                                            "n_snapshots", "seed")})
    assert len(ours.rows) == 2 and ours.gd is None
    for a, b in zip(ours.rows, mlp.rows):
        np.testing.assert_allclose([a.real, a.real_se], [b.real, b.real_se], rtol=1e-6)
        assert (a.discrete, a.sde, a.simulated, a.simulated_se) == (b.discrete, b.sde, b.simulated, b.simulated_se)
    np.testing.assert_allclose(ours.quadratic.noise, mlp.quadratic.noise, rtol=1e-6)


def test_cli_extract_module_on_a_data_file_then_net_vs_theory(tmp_path, capsys):
    """``sdesim extract --module package.module:factory --data file.npz`` writes an extraction that
    ``sdesim net-vs-theory --model`` runs; a data file without ``y`` is a FormatError naming it."""
    from sdesim.cli import main

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.standard_normal((120, 40)), y=rng.integers(0, 10, 120))
    out = tmp_path / "cnn"
    assert main(["extract", "--module", "sdesim.nets.cnn:mnist1d_cnn", "--data", str(tmp_path / "d.npz"),
                 "--steps", "50", "--k", "2", "--maxiter", "10", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "L-BFGS refinement: " in text and "moved |dw|" in text
    assert main(["net-vs-theory", "--model", str(out), "--quick", "--steps", "300", "--directions", "2",
                 "--out", str(tmp_path / "nvt")]) == 0
    report = json.loads((tmp_path / "nvt" / "net_vs_theory.json").read_text())
    assert report["gd"] is None and len(report["rows"]) == 2
    np.savez(tmp_path / "bad.npz", x=np.zeros((3, 40)))
    assert main(["extract", "--module", "sdesim.nets.cnn:mnist1d_cnn", "--data", str(tmp_path / "bad.npz"),
                 "--out", str(out)]) == 2
    assert "bad.npz" in capsys.readouterr().err
    assert main(["extract", "--module", "no_such_package:f", "--data", str(tmp_path / "d.npz"),
                 "--out", str(out)]) == 2
    with pytest.raises(FormatError, match="bad.npz"):
        from sdesim.nets.loading import load_data_file
        load_data_file(tmp_path / "bad.npz")
    with pytest.raises(ConfigError, match="gd_steps"):
        from sdesim.nets.theory import net_vs_theory
        net_vs_theory(out, gd_steps=10)


def test_shipped_cnn_through_net_vs_theory():
    """Beyond the MLP: the shipped 1-D CNN on MNIST-1D (models/mnist1d_cnn, sdesim.nets.cnn) is rebuilt
    from its report (factory, loss, data), its top Hessian eigenpair satisfies H v = h v (one exact HVP,
    residual < 1e-6 h: Lanczos ran to 1e-8), and a short net_vs_theory runs on it (no GD part)."""
    from sdesim.nets.cnn import mnist1d_cnn
    from sdesim.nets.loading import load_objective
    from sdesim.nets.theory import net_vs_theory

    ext, obj, data = load_objective("mnist1d_cnn", build=False)
    assert data is None and isinstance(obj, TorchObjective) and obj.n_params == 1186 == ext.w_star.size
    assert obj.n_samples == ext.report["data"]["n"] == 1000
    h, v = ext.model.hessian_eigenvalues[0], ext.basis[:, 0]
    assert np.linalg.norm(obj.hvp(ext.w_star, v) - h * v) < 1e-6 * h
    rep = net_vs_theory("mnist1d_cnn", steps=400, batches=4, directions=2, n_particles=50, sim_steps=100,
                        n_snapshots=2)
    assert rep.gd is None and len(rep.rows) == 2 and np.all(np.isfinite([r.real for r in rep.rows]))
    assert mnist1d_cnn()(torch.zeros(3, 40)).shape == (3, 10)
