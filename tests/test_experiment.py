"""Experiment files and the command line: validation errors, outputs, the demo at reduced size."""

import json

import numpy as np
import pytest

from sdesim import cli, experiment
from sdesim.experiment import ExperimentError

GOOD = """
[loss]
expr = "0.5*h*(x - 1)**2"
params = { h = 2.0 }

[simulation]
w0 = [0.0]
n_particles = 200
t_end = 2.0
record_every = 5
seed = 3

[[dynamics]]
type = "GD"
lr = 0.1

[[dynamics]]
type = "SGDDiffusion"
lr = 0.1
batch_size = 4
schedule = { type = "Cosine", t_total = 2.0 }
"""


def write(tmp_path, text, name="exp.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_run_writes_results_figures_and_resolved_config(tmp_path):
    summary = experiment.run(write(tmp_path, GOOD), out=tmp_path / "out")
    out = tmp_path / "out"
    assert {"loss_curves.png", "summary.json", "experiment.resolved.json"} <= {p.name for p in out.iterdir()}
    resolved = json.loads((out / "experiment.resolved.json").read_text())
    assert resolved["simulation"]["backend"] == "numba"          # defaults filled in
    assert resolved["dynamics"][1]["schedule"]["type"] == "Cosine"
    gd = summary["lenses"]["GD (lr=0.1)"]
    # GD on 0.5 h (x-1)^2 from 0: x_k = 1 - (1 - lr h)^k, k = 20
    assert gd["final_mean"][0] == pytest.approx(1 - 0.8**20, rel=1e-12)


def test_rerun_from_resolved_config_is_identical(tmp_path):
    experiment.run(write(tmp_path, GOOD), out=tmp_path / "a")
    experiment.run(write(tmp_path, GOOD), out=tmp_path / "b")
    a = np.load(tmp_path / "a" / "SDE_isotropic__T_0_0125__cosine.npz")["w"]
    b = np.load(tmp_path / "b" / "SDE_isotropic__T_0_0125__cosine.npz")["w"]
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("change, message", [
    (("[plots]\n", "[plot]\n"), "unknown section"),
    (("seed = 3", "seed = 3\nparticles = 4"), "unknown key(s) ['particles'] in [simulation]"),
    (('type = "GD"', 'type = "Adam"'), "type must be one of"),
    (("lr = 0.1\n\n[[dynamics]]", "lr = 0.1\nbeta = 2\n\n[[dynamics]]"), "unknown key(s) ['beta']"),
    (('type = "Cosine"', 'type = "Linear"'), "schedule type must be one of"),
    (("lr = 0.1\n\n[[dynamics]]", "lr = -0.1\n\n[[dynamics]]"), "lr must be positive"),
    (('expr = "0.5*h*(x - 1)**2"', 'expr = "0.5*h*(x - 1)**2"\ncatalog = "saddle"'), "exactly one of"),
])
def test_invalid_files_name_the_problem(tmp_path, change, message):
    text = GOOD + "\n[plots]\nloss_curves = true\n"
    assert change[0] in text
    with pytest.raises(ExperimentError) as info:
        experiment.load(write(tmp_path, text.replace(change[0], change[1], 1)))
    assert message in str(info.value)


def test_cli_reports_errors_without_traceback(tmp_path, capsys):
    assert cli.main(["run", str(tmp_path / "missing.toml")]) == 2
    assert "no experiment file" in capsys.readouterr().err


def test_demo_small(tmp_path, capsys):
    assert cli.main(["demo", "--out", str(tmp_path), "--particles", "200", "--t-end", "1.0"]) == 0
    printed = capsys.readouterr().out
    assert "gradient flow" in printed and (tmp_path / "demo.png").stat().st_size > 10_000
    summary = json.loads((tmp_path / "summary.json").read_text())
    # GD and its first-order modified flow agree to O(lr^2) on the clock t = k lr
    assert summary["lenses"]["modified flow, order 1 (lr=0.1)"]["distance_to_GD"] < 1e-2


def test_examples_validate():
    from pathlib import Path
    for path in sorted(Path(__file__).parents[1].joinpath("examples").glob("*.toml")):
        experiment.load(path)


def test_fokker_planck_section(tmp_path):
    """The density of the SDE lens from an experiment file: unit mass, steady state at w*."""
    text = GOOD + """
[fokker_planck]
bounds = [[-1.0, 3.0]]
shape = [400]
dt = 0.01
"""
    summary = experiment.run(write(tmp_path, text), out=tmp_path / "fp")
    entry = summary["fokker_planck"]["SDE isotropic (T=0.0125, cosine)"]
    assert entry["mass_error"] < 1e-12
    assert entry["steady_state_mean"][0] == pytest.approx(1.0, abs=1e-6)   # Gibbs of 0.5 h (x-1)^2
    assert (tmp_path / "fp" / "fokker_planck.png").exists()
    with pytest.raises(ExperimentError, match="needs bounds and shape"):
        experiment.run(write(tmp_path, GOOD + "\n[fokker_planck]\nshape = [10]\n"), out=tmp_path / "bad")


WARMUP = """
[loss]
expr = "0.5*h*(x - 1)**2"
params = { h = 2.0 }

[simulation]
w0 = [0.0]
n_particles = 50
t_end = 1.0
backend = "numpy"

[[dynamics]]
type = "SGDDiffusion"
lr = 0.1
batch_size = 4
schedule = { type = "WarmUp", t_warmup = 0.5 }

[fokker_planck]
bounds = [[-1.0, 3.0]]
shape = [80]
dt = 0.05
"""


def test_fokker_planck_steady_state_with_a_warmup(tmp_path):
    """lr(0) = 0: the default steady state is the lens's at its base lr, the one after the warm-up."""
    import sdesim as sd

    summary = experiment.run(write(tmp_path, WARMUP), out=tmp_path / "fp")
    (label, entry), = summary["fokker_planck"].items()
    assert entry["mass_error"] < 1e-12
    assert entry["steady_state_mean"][0] == pytest.approx(1.0, abs=1e-6)   # Gibbs of 0.5 h (x-1)^2
    rho, = (np.load(p) for p in (tmp_path / "fp").glob("fokker_planck_*.npz"))
    loss, grid = sd.Loss("0.5*h*(x - 1)**2", h=2.0), sd.Grid([(-1.0, 3.0)], (80,))
    const = sd.FokkerPlanck.from_dynamics(loss, sd.SGDDiffusion(0.1, 4), grid).steady_state()
    np.testing.assert_array_equal(rho["steady_state"], const)
    at_end = experiment.run(write(tmp_path, WARMUP + "steady_state_t = 1.0\nevolve = false\n"), out=tmp_path / "end")
    assert at_end["fokker_planck"][label]["steady_state_mean"] == entry["steady_state_mean"]
    with pytest.raises(ExperimentError, match=r"steady state of .*noise vanishes at t = 0.*steady_state_t"):
        experiment.run(write(tmp_path, WARMUP + "steady_state_t = 0.0\n"), out=tmp_path / "start")


def test_cli_run_prints_what_it_measured_and_every_file(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["run", str(write(tmp_path, GOOD)), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    written = sorted(p for p in out.iterdir())
    assert len(written) >= 5 and all(str(p) in printed for p in written)
    assert "GD (lr=0.1)" in printed and "final loss: median [10%, 90%]" in printed
    assert len(printed.splitlines()) <= 24                        # one screen
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["files"]) == {str(p) for p in written}
    sde = summary["lenses"]["SDE isotropic (T=0.0125, cosine)"]
    assert sde["n_particles"] == 200 and sde["final_loss_10_90"][0] <= sde["final_loss_median"]


def test_resolved_configuration_repeats_the_run(tmp_path):
    experiment.run(write(tmp_path, GOOD), out=tmp_path / "a")
    experiment.run(tmp_path / "a" / "experiment.resolved.json", out=tmp_path / "b")
    for name in ("GD__lr_0_1.npz", "SDE_isotropic__T_0_0125__cosine.npz"):
        np.testing.assert_array_equal(np.load(tmp_path / "a" / name)["w"], np.load(tmp_path / "b" / name)["w"])
    with pytest.raises(ExperimentError, match="not valid JSON"):
        experiment.load(write(tmp_path, "{", name="bad.json"))


def test_allowed_values_and_the_plane_are_checked(tmp_path):
    with pytest.raises(ExperimentError, match=r"\[simulation\] backend must be one of \['cupy', 'numba', 'numpy'"):
        experiment.load(write(tmp_path, GOOD.replace("seed = 3", 'seed = 3\nbackend = "nmba"')))
    with pytest.raises(ExperimentError, match=r"\[plots\] plane must be"):
        experiment.load(write(tmp_path, GOOD + '\n[plots]\nplane = ["x"]\n'))
    with pytest.raises(ExperimentError, match=r"\[plots\] format must be one of"):
        experiment.load(write(tmp_path, GOOD + '\n[plots]\nformat = "docx"\n'))


def test_a_loss_of_three_variables_is_drawn_in_a_plane(tmp_path):
    text = GOOD.replace('expr = "0.5*h*(x - 1)**2"', 'expr = "0.5*h*(x - 1)**2 + y**2 + 2*z**2"').replace(
        "w0 = [0.0]", "w0 = [0.0, 0.5, 0.5]").replace("n_particles = 200", "n_particles = 20")
    experiment.run(write(tmp_path, text + '\n[plots]\nplane = ["x", "z"]\n'), out=tmp_path / "xz")
    experiment.run(write(tmp_path, text), out=tmp_path / "hessian")
    assert (tmp_path / "xz" / "trajectories.png").exists() and (tmp_path / "hessian" / "trajectories.png").exists()


def test_reference_page_is_generated_from_the_validator():
    """docs/experiments.md is `sdesim schema` output; every section and key has a description."""
    from pathlib import Path
    page = Path(__file__).parents[1] / "docs" / "experiments.md"
    assert page.read_text() == experiment.schema_markdown(), \
        "docs/experiments.md is stale: regenerate it with `sdesim schema --out docs/experiments.md`"
    assert set(experiment.SECTION_DOCS) == set(experiment.SECTIONS) | {"dynamics"}
    assert {s: set(k) for s, k in experiment.KEYS.items()} == {s: set(k) for s, k in experiment.SECTIONS.items()}
    for section, keys in experiment.SECTIONS.items():
        assert all(f"| `{key}` |" in experiment.schema_markdown() for key in keys), section


def test_cli_schema_writes_the_page(tmp_path, capsys):
    assert cli.main(["schema", "--out", str(tmp_path / "experiments.md")]) == 0
    assert (tmp_path / "experiments.md").read_text() == experiment.schema_markdown()
    assert cli.main(["schema"]) == 0 and "## `[simulation]`" in capsys.readouterr().out


def test_one_clock_and_auto_step_in_experiment_files(tmp_path):
    """``record_dt`` gives every lens the same times, a deterministic lens from one start runs once,
    and ``dt = "auto"`` reaches the SDE; a wrong ``dt`` names the key."""
    text = GOOD.replace("record_every = 5", 'record_dt = 0.5\ndt = "auto"\ndt_tol = 0.02')
    summary = experiment.run(write(tmp_path, text), out=tmp_path / "out")
    results = [np.load(tmp_path / "out" / f) for f in sorted(summary["files"]) if f.endswith(".npz")]
    assert len(results) == 2
    for data in results:
        np.testing.assert_allclose(data["t"], [0.0, 0.5, 1.0, 1.5, 2.0], atol=1e-12)
    assert sorted(data["w"].shape[1] for data in results) == [1, 200]
    with pytest.raises(ExperimentError, match=r'\[simulation\] dt must be a number or "auto"'):
        experiment.run(write(tmp_path, GOOD.replace("record_every = 5", 'dt = "fine"')), out=tmp_path / "x")
