"""Bad input is a clear error naming the problem: damaged files, loss strings, zero-noise
schedules in the Fokker-Planck solver, mistyped experiment files, sdesim's own warnings."""

import pickle

import numpy as np
import pytest

import sdesim as sd
from sdesim import experiment
from sdesim.errors import ConfigError, FormatError, MissingFileError, ParseError, SdesimWarning, SymbolError
from sdesim.result import Result

# --- files ----------------------------------------------------------------------------------


def _model(tmp_path):
    qm = sd.QuadraticModel(hessian=np.diag([2.0, 1.0]), noise_covariance=np.eye(2), w_star=[1.0, -1.0])
    return qm.save(tmp_path / "model.npz"), sd.QuadraticModel.load


def _result(tmp_path):
    res = Result(t=np.arange(3.0), w=np.arange(24.0).reshape(3, 4, 2), loss=np.ones((3, 4)),
                 metadata={"label": "test"}, diverged_at=np.full(4, -1),
                 reduced={"moments": {"mean": np.zeros(2)}})
    return res.save(tmp_path / "result.npz"), Result.load


KINDS = {"model": _model, "result": _result}


def _arrays(path):
    with np.load(path) as f:
        return dict(f)


def _damage(path, how):
    """Overwrite ``path`` with a damaged or foreign version of itself."""
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "text":
        path.write_text("w_star = [1, 2]\n")
    elif how == "pickle":
        path.write_bytes(pickle.dumps({"w_star": [1.0, 2.0]}))
    elif how == "npy":
        with open(path, "wb") as f:
            np.save(f, np.zeros(3))
    elif how == "object array":
        np.savez(path, metadata=np.array([{"format": "x"}], dtype=object))
    elif how == "no metadata":
        np.savez(path, w=np.zeros(2))
    elif how == "metadata not JSON":
        np.savez(path, **{**_arrays(path), "metadata": np.array("{format: 1")})
    elif how == "metadata a JSON list":
        np.savez(path, **{**_arrays(path), "metadata": np.array("[1, 2]")})
    elif how == "an entry missing":
        arrays = _arrays(path)
        arrays.pop("w_star" if "w_star" in arrays else "loss")
        np.savez(path, **arrays)
    elif how == "arrays inconsistent":
        arrays = _arrays(path)
        key = "w_star" if "w_star" in arrays else "loss"
        arrays[key] = np.zeros(7)
        np.savez(path, **arrays)


DAMAGES = ["truncated", "empty", "text", "pickle", "npy", "object array", "no metadata",
           "metadata not JSON", "metadata a JSON list", "an entry missing", "arrays inconsistent"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("how", DAMAGES)
def test_damaged_files_raise_format_error_naming_the_path(tmp_path, kind, how):
    path, load = KINDS[kind](tmp_path)
    _damage(path, how)
    with pytest.raises(FormatError) as info:
        load(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("kind", KINDS)
def test_flipped_bytes_raise_or_load_the_same_arrays(tmp_path, kind):
    """Wherever eight bytes are overwritten, the load fails with FormatError or reads intact data."""
    path, load = KINDS[kind](tmp_path)
    good, data = load(path), path.read_bytes()
    fields = ("w_star", "H", "S") if kind == "model" else ("t", "w", "loss", "diverged_at")
    for at in range(0, len(data) - 8, max(1, len(data) // 40)):
        path.write_bytes(data[:at] + b"\xff" * 8 + data[at + 8:])
        try:
            back = load(path)
        except FormatError as exc:
            assert str(path) in str(exc)
            continue
        for name in fields:
            np.testing.assert_array_equal(getattr(back, name), getattr(good, name))


def test_files_of_the_other_kind_are_refused(tmp_path):
    model, _ = _model(tmp_path)
    result, _ = _result(tmp_path)
    with pytest.raises(FormatError, match="sdesim.Result"):
        sd.QuadraticModel.load(result)
    with pytest.raises(FormatError, match="sdesim.QuadraticModel"):
        Result.load(model)


@pytest.mark.parametrize("load", [sd.QuadraticModel.load, Result.load])
def test_missing_file_is_named(tmp_path, load):
    with pytest.raises(MissingFileError, match="nothing.npz") as info:
        load(tmp_path / "nothing.npz")
    assert isinstance(info.value, FileNotFoundError)


def test_extraction_whose_report_lacks_the_net_is_named(tmp_path):
    from sdesim.nets.extract import Extraction
    from sdesim.nets.loading import load_extraction

    ext = Extraction(sd.QuadraticModel(hessian=np.eye(2)), np.eye(3)[:, :2], np.zeros(3), np.ones(2),
                     np.eye(3)[:, :2], {"grad_norm": 0.0})
    path = ext.save(tmp_path / "foreign")
    with pytest.raises(FormatError, match="foreign.*does not describe a net"):
        load_extraction(path, build=False)
    with pytest.raises(MissingFileError, match="nothing"):
        load_extraction(tmp_path / "nothing", build=False)

def test_result_reduced_outputs_survive_the_round_trip(tmp_path):
    path, load = _result(tmp_path)
    back = load(path)
    np.testing.assert_array_equal(back.reduced["moments"]["mean"], np.zeros(2))
    assert back.metadata["label"] == "test"


# --- loss strings ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, token, position, reason", [
    ("x^2 + y", "'^'", 1, "write '**'"),
    ("sinn(x) + y", "'sinn'", 0, "did you mean 'sin'"),
    ("x + foo(y)", "'foo'", 4, "unknown function 'foo'"),
    ("x**2 + (y", "'('", 7, "never closed"),
    ("x ** * 2", "'*'", 5, "invalid syntax"),
    ("x +", "end of string", 3, "invalid syntax"),
    ("2x + y", "'2x'", 0, "invalid decimal literal"),
    ("x % 2", "'%'", 2, "operator"),
    ("x < y", "'<'", 2, "not allowed"),
    ("x if y else 1", "'x'", 0, "not allowed"),
    ("x and y", "'x'", 0, "not allowed"),
    ("x.real", "'x'", 0, "not allowed"),
    ("x + 'a'", "\"'\"", 4, "not a number"),
    ("np.exp(x)", "'np'", 0, "unknown function 'np.exp'"),
    ("sin(x=1)", "'sin'", 0, "positional"),
])
def test_parse_errors_name_token_and_position(text, token, position, reason):
    with pytest.raises(ParseError) as info:
        sd.Loss(text)
    msg = str(info.value)
    assert isinstance(info.value, SymbolError)              # what unparsable strings raised before
    assert f"position {position} ({token})" in msg and reason in msg and repr(text) in msg


def test_parse_errors_in_finite_sum_losses():
    with pytest.raises(ParseError, match=r"'\^'.*write '\*\*'"):
        sd.FiniteSumLoss("0.5*(a*x - y)^2", params=("a",), data={"x": np.ones(3), "y": np.ones(3)})
    with pytest.raises(ParseError, match="unknown function 'sigmoid'"):
        sd.FiniteSumLoss("sigmoid(a*x - y)", params=("a",), data={"x": np.ones(3), "y": np.ones(3)})


@pytest.mark.parametrize("text, params, point, value", [
    ("  (x - 1)**2 + Abs(y) ", {}, [0.0, -2.0], 3.0),
    ("Rational(1, 2)*x**2 + Min(x, y)", {}, [2.0, 1.0], 3.0),
    ("(x**2\n + 3*y)", {}, [1.0, 1.0], 4.0),
    ("E*x + pi*0 + sign(x)", {"E": 1.5}, [2.0], 4.0),
    ("-x + (+y) / 2", {}, [1.0, 4.0], 1.0),
    ("exp(log(x)) + atan2(y, 1)", {}, [2.0, 0.0], 2.0),
])
def test_valid_strings_still_parse(text, params, point, value):
    assert sd.Loss(text, **params).value(point) == pytest.approx(value)


# --- Fokker-Planck with zero noise ----------------------------------------------------------

LR, B, T_WARMUP = 0.2, 1, 0.5


def _warmup_and_constant():
    loss = sd.Loss("(x**2 - 1)**2 / 4")
    grid = sd.Grid([(-2.5, 2.5)], (250,))
    warm = sd.FokkerPlanck.from_dynamics(loss, sd.SGDDiffusion(LR, B, schedule=sd.schedules.WarmUp(T_WARMUP)),
                                         grid)
    return warm, sd.FokkerPlanck.from_dynamics(loss, sd.SGDDiffusion(LR, B), grid), grid.gaussian([0.3], [[0.04]])


@pytest.mark.filterwarnings("error::UserWarning", "error::RuntimeWarning")
@pytest.mark.parametrize("method", ["backward-euler", "tr-bdf2", "split"])
def test_warmup_schedule_gives_finite_mass_conserving_densities(method):
    """lr(0) = 0: no division by the zero temperature, the evolution passes through it."""
    warm, _, rho0 = _warmup_and_constant()
    res = warm.evolve(rho0, t_end=2.0, dt=0.01, record=10, method=method)
    assert np.all(np.isfinite(res.rho))
    assert res.rho.min() > -1e-15
    np.testing.assert_allclose(res.mass(), 1.0, rtol=0, atol=1e-12)


@pytest.mark.filterwarnings("error::UserWarning", "error::RuntimeWarning")
def test_warmup_matches_constant_schedule_after_the_warmup():
    """After t_w the generator is the constant schedule's, bit for bit; the evolution equals the
    constant-schedule evolution started from the warm-up density at t_w."""
    warm, const, rho0 = _warmup_and_constant()
    for t in (T_WARMUP, 0.7, 5.0):
        assert (warm.matrix(t) != const.matrix()).nnz == 0
    assert (warm.matrix(0.25) != const.matrix()).nnz > 0
    whole = warm.evolve(rho0, t_end=2.0, dt=0.01)
    first = warm.evolve(rho0, t_end=T_WARMUP, dt=0.01)
    glued = const.evolve(first.rho[-1], t_end=2.0 - T_WARMUP, dt=0.01)
    np.testing.assert_allclose(whole.rho[-1], glued.rho[-1], rtol=0, atol=1e-13)
    np.testing.assert_allclose(warm.steady_state(t=1.0), const.steady_state(), rtol=1e-14, atol=0)


@pytest.mark.filterwarnings("error::UserWarning", "error::RuntimeWarning")
def test_zero_noise_is_upwind_drift_transport():
    """s(t) = 0 and D = 0 give the same M-matrix of upwind rates; the mean follows the gradient flow."""
    loss, grid = sd.Loss("x**2 / 2"), sd.Grid([(-3.0, 3.0)], (300,))
    fp = sd.FokkerPlanck(loss, temperature=0.1, grid=grid, noise_schedule=lambda t: 0.0)
    L = fp.matrix().toarray()
    np.testing.assert_allclose(L.sum(axis=0), 0.0, atol=1e-12)
    assert (L - np.diag(np.diag(L))).min() >= 0
    rho0 = grid.gaussian([1.5], [[0.01]])
    res = fp.evolve(rho0, t_end=1.0, dt=0.005, record=50)
    mean = res.rho @ grid.axes[0] * grid.cell_volume
    np.testing.assert_allclose(mean, 1.5 * np.exp(-res.t), atol=grid.spacing[0])
    np.testing.assert_allclose(res.mass(), 1.0, atol=1e-12)
    still = sd.FokkerPlanck(loss, diffusion=np.zeros((1, 1)), grid=grid).evolve(rho0, t_end=1.0, dt=0.005)
    np.testing.assert_allclose(still.rho[-1], res.rho[-1], atol=1e-12)


def test_vanishing_noise_has_no_steady_state_or_escape_time():
    warm, _, _ = _warmup_and_constant()
    with pytest.raises(ConfigError, match="noise vanishes at t = 0"):
        warm.steady_state()
    with pytest.raises(ConfigError, match="noise vanishes"):
        warm.mean_first_passage_time(lambda X: X[..., 0] > 1.0)
    assert np.all(np.isfinite(warm.mean_first_passage_time(lambda X: X[..., 0] > 1.0, t=1.0)))


@pytest.mark.parametrize("value", [-0.5, float("nan"), float("inf")])
def test_bad_noise_schedule_values_are_named(value):
    grid = sd.Grid([(-3.0, 3.0)], (60,))
    fp = sd.FokkerPlanck(sd.Loss("x**2 / 2"), temperature=0.1, grid=grid, noise_schedule=lambda t: value)
    with pytest.raises(ConfigError, match="noise_schedule"):
        fp.evolve(grid.gaussian([0.0], [[0.1]]), t_end=0.1, dt=0.05)


# --- experiment files -----------------------------------------------------------------------

GOOD = """
[loss]
expr = "0.5*h*(x - 1)**2"
params = { h = 2.0 }

[simulation]
w0 = [0.0]
n_particles = 20
t_end = 1.0

[[dynamics]]
type = "SGDDiffusion"
lr = 0.1
batch_size = 4
schedule = { type = "Cosine", t_total = 2.0 }

[fokker_planck]
bounds = [[-1.0, 3.0]]
shape = [40]
"""


@pytest.mark.parametrize("change, message", [
    (("lr = 0.1", "lr = [0.1, 0.2]"), "[[dynamics]] #1 (SGDDiffusion): lr must be a number, got the list"),
    (("batch_size = 4", "batch_size = [4]"), "batch_size must be an integer"),
    (("batch_size = 4", "batch_size = true"), "batch_size must be an integer, got True"),
    (("t_total = 2.0", "t_total = [2.0]"), "schedule Cosine: t_total must be a number"),
    (('schedule = { type = "Cosine", t_total = 2.0 }', "schedule = 0.5"), "schedule must be a table"),
    (("n_particles = 20", "n_particles = [20]"), "[simulation] n_particles must be an integer"),
    (("t_end = 1.0", "t_end = [1.0, 2.0]"), "[simulation] t_end must be a number"),
    (("w0 = [0.0]", 'w0 = "origin"'), "[simulation] w0 must be a number, a list of numbers"),
    (("w0 = [0.0]", "w0 = [[0.0], [1.0, 2.0]]"), "[simulation] w0 must be"),
    (("h = 2.0", "h = [2.0]"), "[loss] params.h must be a number"),
    (("params = { h = 2.0 }", "params = [2.0]"), "[loss] params must be a table"),
    (('expr = "0.5*h*(x - 1)**2"', 'expr = ["x"]'), "[loss] expr must be a string"),
    (("shape = [40]", "shape = 40"), "[fokker_planck] shape must be a list of cell counts"),
    (("bounds = [[-1.0, 3.0]]", "bounds = [-1.0, 3.0]"), "[fokker_planck] bounds must be a list of [lo, hi] pairs"),
    (("shape = [40]", "shape = [40]\ndt = [0.1]"), "[fokker_planck] dt must be a number"),
    (("shape = [40]", "shape = [40]\nsteady_state = 1"), "[fokker_planck] steady_state must be true or false"),
])
def test_experiment_values_of_the_wrong_type_name_the_key(tmp_path, change, message):
    assert change[0] in GOOD
    path = tmp_path / "exp.toml"
    path.write_text(GOOD.replace(change[0], change[1], 1))
    with pytest.raises(ConfigError) as info:
        experiment.load(path)
    assert message in str(info.value)


def test_experiment_file_that_is_not_text(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(ConfigError, match="not valid TOML"):
        experiment.load(path)


def test_experiment_good_file_still_validates(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text(GOOD)
    assert experiment.load(path)["dynamics"][0]["lr"] == 0.1


# --- warnings -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["BoundaryMassWarning", "ResolutionWarning", "PositivityWarning"])
def test_fokker_planck_warnings_are_sdesim_warnings(name):
    assert issubclass(getattr(sd.fokker_planck, name), SdesimWarning)
    assert getattr(sd.fokker_planck, name) is getattr(sd.errors, name)


def test_fokker_planck_warning_is_issued_as_sdesim_warning():
    grid = sd.Grid([(-0.5, 0.5)], (20,))
    fp = sd.FokkerPlanck(sd.Loss("x**2 / 2"), temperature=1.0, grid=grid)
    with pytest.warns(SdesimWarning, match="boundary cells"):
        fp.steady_state()



def _unclassified_warnings(source, namespace):
    """``(line, category)`` of each ``warnings.warn`` call in ``source`` whose category is not an
    `SdesimWarning` subclass, resolved in ``namespace`` or `sdesim.errors`; and the number of calls."""
    import ast

    tree = ast.parse(source)
    warns = {"warnings.warn"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            warns |= {f"{a.asname}.warn" for a in node.names if a.name == "warnings" and a.asname}
        elif isinstance(node, ast.ImportFrom) and node.module == "warnings":
            warns |= {a.asname or a.name for a in node.names if a.name == "warn"}
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and ast.unparse(node.func) in warns]
    bad = []
    for call in calls:
        given = call.args[1:2] + [k.value for k in call.keywords if k.arg == "category"]
        name = ast.unparse(given[0]) if given else "no category"
        head, *rest = name.split(".")
        category = namespace.get(head, getattr(sd.errors, head, None))
        for attr in rest:
            category = getattr(category, attr, None)
        if not (isinstance(category, type) and issubclass(category, SdesimWarning)):
            bad.append((call.lineno, name))
    return bad, len(calls)


def test_warning_checker_catches_warnings_without_an_sdesim_category():
    assert _unclassified_warnings('import warnings\nwarnings.warn("x")\n', {}) == ([(2, "no category")], 1)
    assert _unclassified_warnings('from warnings import warn as w\nw("x", UserWarning)\n', {}) == \
        ([(2, "UserWarning")], 1)
    assert _unclassified_warnings('import warnings as wn\nwn.warn("x", category=errors.ValidityWarning)\n',
                                  {"errors": sd.errors}) == ([], 1)
    assert _unclassified_warnings('warnings.warn("x", DivergenceWarning, stacklevel=2)\n', {}) == ([], 1)


def test_every_warning_sdesim_issues_is_an_sdesim_warning():
    import importlib
    import pkgutil
    from pathlib import Path

    bad, n_calls = [], 0
    for info in pkgutil.walk_packages(sd.__path__, "sdesim."):
        module = importlib.import_module(info.name)
        found, n = _unclassified_warnings(Path(module.__file__).read_text(), vars(module))
        bad += [(info.name, *where) for where in found]
        n_calls += n
    assert n_calls >= 9 and not bad


# --- damaged extraction bases and data caches -----------------------------------------------

def _basis(tmp_path):
    from sdesim.nets.extract import Extraction

    ext = Extraction(sd.QuadraticModel(hessian=np.diag([2.0, 1.0])), np.eye(3)[:, :2], np.zeros(3), np.ones(2),
                     np.eye(3)[:, :2], {"grad_norm": 0.0})
    path = ext.save(tmp_path / "ext")
    return path, path.with_suffix(".basis.npz"), Extraction.load


@pytest.mark.parametrize("how", [d for d in DAMAGES if not d.startswith("metadata")]
                         + ["report not JSON", "report a JSON list", "foreign format"])
def test_damaged_extraction_basis_raises_format_error_naming_it(tmp_path, how):
    path, bpath, load = _basis(tmp_path)
    if how.startswith("report") or how == "foreign format":
        key, value = {"report not JSON": ("report", "{grad"), "report a JSON list": ("report", "[1]"),
                      "foreign format": ("format", "sdesim.Result")}[how]
        np.savez(bpath, **{**_arrays(bpath), key: np.array(value)})
    else:
        _damage(bpath, how)
    with pytest.raises(FormatError) as info:
        load(path)
    assert str(bpath) in str(info.value)


@pytest.mark.parametrize("how", ["truncated", "text", "an entry missing"])
def test_damaged_mnist1d_cache_raises_format_error_naming_it(tmp_path, monkeypatch, how):
    from sdesim.nets import data

    monkeypatch.setenv("SDESIM_CACHE", str(tmp_path))
    path = data.cache_dir() / "mnist1d-seed42-v1.npz"
    np.savez(path, x=np.zeros((4, 40)), y=np.arange(4), x_test=np.zeros((2, 40)), y_test=np.arange(2))
    if how == "an entry missing":
        np.savez(path, x=np.zeros((4, 40)), y=np.arange(4))
    else:
        _damage(path, how)
    with pytest.raises(FormatError, match="delete the cached file") as info:
        data.load_mnist1d(seed=42)
    assert str(path) in str(info.value)
