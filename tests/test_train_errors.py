"""A train section's data, met when training starts: each problem is a clean modelspec error.

`modelspec.data.check_files` runs with every check (the file is there, a CSV header holds the columns the
spec names, an ``.npz`` the arrays); `modelspec.data.check_data` reads the files before the loop and holds
each tensor to what the spec declares. Here each data mistake is written to ``tmp_path`` beside a small
spec, trained through `modelspec.trainer.train` and through ``modelspec train`` (`modelspec.cli.main`, its
stderr captured): the error names the file and the column (or key), points into the spec, says what to do
(a hint), and the command exits 1 -- never a Python traceback, never "internal error". The happy paths of
the three file kinds train two epochs. Small data (tens of rows), one or two epochs: the file runs in
seconds.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")

import modelspec  # noqa: E402
from modelspec import SpecError  # noqa: E402
from modelspec.cli import main  # noqa: E402
from modelspec.trainer import train  # noqa: E402

LOCATED = re.compile(r"^(\S+\.nnspec):(\d+):(\d+): (.+)$")

NET = "model Net(x: [B, 4]) { fc = Linear(4, 3) }\n"
DATA_LINE = 4  # of a spec write_spec writes: the model, `train Net {`, the target, then the data


def write_spec(folder: Path, data: str, *, target: str = "Long[B]", model: str = NET, loss: str = "CrossEntropyLoss()",
               extra: str = "", name: str = "net.nnspec") -> Path:
    """A spec training ``model`` on ``data`` (spec text), one epoch on the CPU, in batches of 8."""
    path = folder / name
    path.write_text(
        model + "train Net {\n"
        f"    target y: {target}\n"
        f"    data = {data}\n"
        f"    loss = {loss}\n"
        "    optimizer = SGD(lr=0.1)\n"
        "    epochs = 1\n"
        "    batch_size = 8\n"
        '    device = "cpu"\n'
        f"{extra}"
        "}\n", encoding="utf-8")
    return path


def quiet_train(spec: Path, **kw):
    return train(str(spec), progress=False, echo=lambda line: None, out=str(spec.parent / "out"), **kw)


def spec_error(spec: Path, **kw) -> SpecError:
    with pytest.raises(SpecError) as info:
        quiet_train(spec, **kw)
    return info.value


def points(n: int = 24, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=g), torch.randint(0, 3, (n,), generator=g)


def write_csv(path: Path, rows: list[list], header: str = "a,b,c,d,label") -> Path:
    path.write_text(header + "\n" + "".join(",".join(str(v) for v in row) + "\n" for row in rows), encoding="utf-8")
    return path


def csv_rows(n: int = 24) -> list[list]:
    x, y = points(n)
    return [[round(float(v), 4) for v in xs] + [int(label)] for xs, label in zip(x, y)]


def spec_column(spec: Path, line: int, needle: str) -> int:
    """The 1-based column of ``needle`` on ``line`` of the spec."""
    return spec.read_text(encoding="utf-8").split("\n")[line - 1].index(needle) + 1


def assert_points_at(err: SpecError, spec: Path, needle: str):
    """The error is on the spec's data line, at ``needle`` (a file name's string, a keyword's value)."""
    assert err.line == DATA_LINE, err.render()
    assert err.column == spec_column(spec, DATA_LINE, needle), err.render()


def cli_stderr(capsys, *argv: str) -> tuple[int, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, err


def assert_clean_cli_error(rc: int, err: str, spec: Path, *, located: bool = True) -> re.Match | None:
    assert rc == 1, err
    assert "Traceback" not in err and "internal error" not in err, err
    assert re.search(r"^hint: \S", err, re.M), f"no hint:\n{err}"
    if not located:
        assert err.startswith(f"{spec.name}:") or err.startswith(f"{spec}:"), err
        return None
    first = err.split("\n")[0]
    m = LOCATED.match(first)
    assert m, f"not file:line:col: message:\n{err}"
    assert Path(m.group(1)).name == spec.name, first
    return m


# ---------------------------------------------------------------- the data mistakes, each once
def csv_not_a_number(tmp: Path):
    rows = csv_rows()
    rows[4][2] = "x3"  # line 6 of the file (the header is line 1), column 'c'
    write_csv(tmp / "points.csv", rows)
    spec = write_spec(tmp, 'load("points.csv", x=["a", "b", "c", "d"], y="label")')
    return spec, ["points.csv", "line 6", "'c'", "'x3'"], '["a", "b", "c", "d"]'


def pt_not_a_dict(tmp: Path):
    x, y = points()
    torch.save([x, y], tmp / "points.pt")
    return write_spec(tmp, 'load("points.pt")'), ["points.pt", "list", "dict"], '"points.pt"'


def pt_no_such_tensor(tmp: Path):
    x, y = points()
    torch.save({"inputs": x, "labels": y}, tmp / "points.pt")
    spec = write_spec(tmp, 'load("points.pt", x="inputs", y="targets")')
    return spec, ["points.pt", "'targets'", "inputs, labels"], '"targets"'


def pt_wrong_sample_shape(tmp: Path):
    x, y = points()
    torch.save({"x": x.repeat(1, 2), "y": y}, tmp / "points.pt")
    return write_spec(tmp, 'load("points.pt")'), ["points.pt", "'x'", "[24, 8]", "[N, 4]"], 'load('


def pt_float_labels(tmp: Path):
    x, y = points()
    torch.save({"x": x, "y": y.float()}, tmp / "points.pt")
    return write_spec(tmp, 'load("points.pt")'), ["points.pt", "'y'", "float32", "Long"], 'load('


def pt_labels_out_of_range(tmp: Path):
    x, y = points()
    y[5] = 7
    torch.save({"x": x, "labels": y}, tmp / "points.pt")
    spec = write_spec(tmp, 'load("points.pt", y="labels")')
    return spec, ["points.pt", "'labels'", "0 to 7", "3 classes"], '"labels"'


def npz_no_such_array(tmp: Path):
    x, y = points()
    np.savez(tmp / "points.npz", x=x.numpy(), label=y.numpy())
    spec = write_spec(tmp, 'load("points.npz", y="labels")')
    return spec, ["points.npz", "'labels'", "x, label"], '"labels"'


DATA_MISTAKES = [csv_not_a_number, pt_not_a_dict, pt_no_such_tensor, pt_wrong_sample_shape, pt_float_labels,
                 pt_labels_out_of_range, npz_no_such_array]


@pytest.mark.parametrize("mistake", DATA_MISTAKES, ids=[m.__name__ for m in DATA_MISTAKES])
def test_a_data_mistake_is_a_located_error_naming_the_file_and_the_column(mistake, tmp_path):
    spec, words, needle = mistake(tmp_path)
    err = spec_error(spec)
    for word in words:
        assert word in err.message, f"{word!r} not in: {err.render()}"
    assert err.hint, err.render()
    assert_points_at(err, spec, needle)
    assert "Traceback" not in err.render()


@pytest.mark.parametrize("mistake", DATA_MISTAKES, ids=[m.__name__ for m in DATA_MISTAKES])
def test_modelspec_train_prints_a_data_mistake_as_file_line_col(mistake, tmp_path, capsys):
    spec, words, needle = mistake(tmp_path)
    rc, err = cli_stderr(capsys, "train", str(spec), "--out", str(tmp_path / "out"), "--no-progress")
    m = assert_clean_cli_error(rc, err, spec)
    assert (int(m.group(2)), int(m.group(3))) == (DATA_LINE, spec_column(spec, DATA_LINE, needle)), err
    assert all(w in m.group(4) for w in words), err
    assert re.search(r"^    .*\n +\^+$", err, re.M), f"no source line and caret:\n{err}"


def test_modelspec_train_exits_1_without_a_traceback_on_each_data_mistake(tmp_path, capsys):
    """What holds today for every mistake, located or not: exit 1, a hint, the file and the column named."""
    for mistake in DATA_MISTAKES:
        folder = tmp_path / mistake.__name__
        folder.mkdir()
        spec, words, _ = mistake(folder)
        rc, err = cli_stderr(capsys, "train", str(spec), "--out", str(folder / "out"), "--no-progress")
        assert rc == 1, (mistake.__name__, err)
        assert "Traceback" not in err and "internal error" not in err, err
        assert re.search(r"^hint: \S", err, re.M), err
        assert all(w in err for w in words), err


# ---------------------------------------------------------------- resume
def other_checkpoint(tmp_path: Path) -> Path:
    x, y = points()
    torch.save({"x": x, "y": y}, tmp_path / "points.pt")
    other = write_spec(tmp_path, 'load("points.pt")', model="model Other(x: [B, 4]) { fc = Linear(4, 3) }\n",
                       name="other.nnspec")
    other.write_text(other.read_text(encoding="utf-8").replace("train Net", "train Other"), encoding="utf-8")
    result = train(str(other), progress=False, echo=lambda line: None, out=str(tmp_path / "other_run"))
    assert len(result.history) == 1
    return Path(result.checkpoint)


def test_resume_from_a_checkpoint_of_another_model_is_a_clean_error(tmp_path):
    checkpoint = other_checkpoint(tmp_path)
    spec = write_spec(tmp_path, 'load("points.pt")')
    err = spec_error(spec, resume=str(checkpoint))
    assert "checkpoint of 'Other'" in err.message and "Net" in err.message, err.render()
    assert str(checkpoint) in err.message
    assert err.hint


def other_layers_checkpoint(tmp_path: Path) -> str:
    """A checkpoint of a model named Net, as the spec's, but with other layers."""
    x, y = points()
    torch.save({"x": x, "y": y}, tmp_path / "points.pt")
    wide = write_spec(tmp_path, 'load("points.pt")', model="model Net(x: [B, 4]) { fc = Linear(4, 8); "
                                                           "out = Linear(8, 3) }\n", name="wide.nnspec")
    return train(str(wide), progress=False, echo=lambda line: None, out=str(tmp_path / "wide_run")).checkpoint


def test_resume_from_a_checkpoint_of_other_layers_is_a_clean_error(tmp_path):
    checkpoint = other_layers_checkpoint(tmp_path)
    err = spec_error(write_spec(tmp_path, 'load("points.pt")'), resume=checkpoint)
    assert "does not fit this model" in err.message, err.render()
    assert err.hint


def test_resume_from_a_checkpoint_of_other_layers_names_the_keys(tmp_path):
    checkpoint = other_layers_checkpoint(tmp_path)
    err = spec_error(write_spec(tmp_path, 'load("points.pt")'), resume=checkpoint)
    assert "out.weight" in err.message or "fc.weight" in err.message, err.render()


def test_modelspec_train_resume_of_another_model_exits_1(tmp_path, capsys):
    checkpoint = other_checkpoint(tmp_path)
    spec = write_spec(tmp_path, 'load("points.pt")')
    capsys.readouterr()
    rc, err = cli_stderr(capsys, "train", str(spec), "--out", str(checkpoint.parent), "--resume", "--no-progress")
    assert rc == 1, err
    assert "Traceback" not in err and "internal error" not in err, err
    assert "checkpoint of 'Other'" in err and re.search(r"^hint: \S", err, re.M), err


def test_modelspec_train_resume_error_names_the_spec(tmp_path, capsys):
    checkpoint = other_checkpoint(tmp_path)
    spec = write_spec(tmp_path, 'load("points.pt")')
    capsys.readouterr()
    rc, err = cli_stderr(capsys, "train", str(spec), "--out", str(checkpoint.parent), "--resume", "--no-progress")
    assert_clean_cli_error(rc, err, spec, located=False)


# ---------------------------------------------------------------- the happy paths: .csv, .pt, .npz
def assert_trained_two_epochs(spec: Path):
    result = train(str(spec), epochs=2, progress=False, echo=lambda line: None, out=str(spec.parent / "run"))
    assert len(result.history) == 2
    assert all(math.isfinite(h["loss"]) for h in result.history), result.history
    assert Path(result.weights).is_file() and Path(result.checkpoint).is_file()
    return result


def test_a_csv_file_trains_with_columns_chosen_by_name(tmp_path):
    # the columns in another order than the spec reads them, and one the spec does not read
    x, y = points(32)
    header = "label,d,unused,b,a,c"
    rows = [[int(t), float(v[3]), 0.5, float(v[1]), float(v[0]), float(v[2])] for v, t in zip(x, y)]
    write_csv(tmp_path / "points.csv", rows, header=header)
    result = assert_trained_two_epochs(write_spec(tmp_path, 'load("points.csv", x=["a", "b", "c", "d"], y="label")'))
    assert "accuracy" in result.history[-1]


def test_a_pt_file_trains(tmp_path):
    x, y = points(32)
    torch.save({"inputs": x, "labels": y}, tmp_path / "points.pt")
    assert_trained_two_epochs(write_spec(tmp_path, 'load("points.pt", x="inputs", y="labels")'))


def test_an_npz_file_trains(tmp_path):
    x, y = points(32)
    np.savez(tmp_path / "points.npz", x=x.numpy(), y=y.numpy())
    assert_trained_two_epochs(write_spec(tmp_path, 'load("points.npz")'))


def test_a_float_target_file_trains_a_regression(tmp_path):
    x, _ = points(32)
    write_csv(tmp_path / "houses.csv", [[*map(float, v), float(v.sum())] for v in x], header="a,b,c,d,price")
    spec = write_spec(tmp_path, 'load("houses.csv", x=["a", "b", "c", "d"], y=["price"])', target="[B, 1]",
                      model="model Net(x: [B, 4]) { fc = Linear(4, 1) }\n", loss="MSELoss()")
    assert_trained_two_epochs(spec)


# ---------------------------------------------------------------- at check time
def test_check_fails_on_a_missing_data_file_at_its_name(tmp_path, capsys):
    spec = write_spec(tmp_path, 'load("nowhere.csv", x=["a", "b", "c", "d"], y="label")')
    rc, err = cli_stderr(capsys, "check", str(spec))
    m = assert_clean_cli_error(rc, err, spec)
    assert (int(m.group(2)), int(m.group(3))) == (DATA_LINE, spec_column(spec, DATA_LINE, '"nowhere.csv"')), err
    assert "nowhere.csv" in m.group(4), err
    caret = err.split("\n")[2]
    assert caret.strip() == "^" * len('"nowhere.csv"'), err


def test_check_fails_on_a_csv_header_without_a_named_column(tmp_path, capsys):
    write_csv(tmp_path / "points.csv", csv_rows())
    spec = write_spec(tmp_path, 'load("points.csv", x=["a", "b", "c", "e"], y="label")')
    rc, err = cli_stderr(capsys, "check", str(spec))
    m = assert_clean_cli_error(rc, err, spec)
    assert "'e'" in m.group(4) and "points.csv" in m.group(4), err


def test_check_passes_once_the_data_file_is_there(tmp_path, capsys):
    spec = write_spec(tmp_path, 'load("points.csv", x=["a", "b", "c", "d"], y="label")')
    write_csv(tmp_path / "points.csv", csv_rows())
    rc, err = cli_stderr(capsys, "check", str(spec))
    assert rc == 0, err


def test_cross_entropy_takes_class_probabilities_of_the_output_shape(tmp_path):
    """The issue's example, a [B, 10] float target for CrossEntropyLoss on a [B, 10] output, is no mistake:
    torch reads it as class probabilities (the catalog's train_loss_float_class_target has the [B] float
    target that is one)."""
    import modelspec

    spec = tmp_path / "probs.nnspec"
    spec.write_text("model Net(x: [B, 4]) { fc = Linear(_, 10) }\n"
                    "train Net {\n    target y: [B, 10]\n"
                    "    data { x = torch.randn(16, 4); y = torch.softmax(torch.randn(16, 10), 1) }\n"
                    "    loss = CrossEntropyLoss()\n    optimizer = SGD(lr=0.1)\n}\n", encoding="utf-8")
    plan = modelspec.elaborate_spec(spec).train
    assert plan.loss == "CrossEntropyLoss" and plan.target.dtype == "float"
    assert torch.nn.CrossEntropyLoss()(torch.randn(4, 10), torch.rand(4, 10)).isfinite()


# ---------------------------------------------------------------- bugs found (see the module's docstring)
def test_csv_label_that_is_not_an_integer_says_so(tmp_path):
    rows = csv_rows()
    rows[2][4] = 1.5
    write_csv(tmp_path / "points.csv", rows)
    err = spec_error(write_spec(tmp_path, 'load("points.csv", x=["a", "b", "c", "d"], y="label")'))
    assert "line 4" in err.message and "'label'" in err.message and "integer" in err.message, err.render()


def test_csv_line_numbers_count_blank_lines(tmp_path):
    (tmp_path / "points.csv").write_text("a,b,c,d,label\n1,2,3,4,0\n\n1,2,3,4,1\n1,2,x,4,2\n", encoding="utf-8")
    err = spec_error(write_spec(tmp_path, 'load("points.csv", x=["a", "b", "c", "d"], y="label")'))
    assert "line 5" in err.message, err.render()


def test_an_empty_csv_is_a_clean_error(tmp_path):
    (tmp_path / "points.csv").write_text("a,b,c,d,label\n", encoding="utf-8")
    err = spec_error(write_spec(tmp_path, 'load("points.csv", x=["a", "b", "c", "d"], y="label")'))
    assert "Traceback" not in err.render() and err.hint


def test_a_nan_in_the_data_is_an_error(tmp_path):
    x, y = points()
    x[3, 1] = float("nan")
    torch.save({"x": x, "y": y}, tmp_path / "points.pt")
    err = spec_error(write_spec(tmp_path, 'load("points.pt")'))
    assert "nan" in err.message and "'x'" in err.message, err.render()


def test_uint16_labels_are_checked_without_a_crash(tmp_path):
    x, y = points()
    np.savez(tmp_path / "points.npz", x=x.numpy(), y=y.numpy().astype("uint16"))
    spec = write_spec(tmp_path, 'load("points.npz")')
    try:
        quiet_train(spec)
    except SpecError:
        pass


def test_data_block_labels_outside_the_class_count_are_an_error(tmp_path):
    spec = tmp_path / "net.nnspec"
    spec.write_text(NET + "train Net {\n    target y: Long[B]\n"
                          "    data { x = torch.randn(20, 4); y = torch.randint(0, 30, (20,)) }\n"
                          "    loss = CrossEntropyLoss()\n    optimizer = SGD(lr=0.1)\n    epochs = 1\n"
                          '    device = "cpu"\n}\n', encoding="utf-8")
    spec_error(spec)


def test_data_block_with_a_return_is_a_spec_error(tmp_path):
    import modelspec

    spec = tmp_path / "net.nnspec"
    spec.write_text(NET + "train Net {\n    target y: Long[B]\n"
                          "    data { x = torch.randn(20, 4); y = torch.randint(0, 3, (20,)); return x }\n"
                          "    loss = CrossEntropyLoss()\n    optimizer = SGD(lr=0.1)\n}\n", encoding="utf-8")
    with pytest.raises(SpecError):
        modelspec.elaborate_spec(spec)


def test_csv_load_for_an_input_with_a_symbolic_dim_is_a_spec_error(tmp_path):
    import modelspec

    write_csv(tmp_path / "points.csv", csv_rows())
    spec = write_spec(tmp_path, 'load("points.csv", x=["a", "b", "c", "d"], y="label")',
                      model="model Net(x: [B, T, 4]) { fc = Linear(4, 3); forward(x) { return fc(x).mean(1) } }\n")
    with pytest.raises(SpecError):
        modelspec.elaborate_spec(spec)


def test_set_with_a_name_that_is_no_setting_name_exits_1(tmp_path, capsys):
    x, y = points()
    torch.save({"x": x, "y": y}, tmp_path / "points.pt")
    spec = write_spec(tmp_path, 'load("points.pt")')
    rc, err = cli_stderr(capsys, "train", str(spec), "--set", "1x=3", "--no-progress")
    assert rc == 1 and "internal error" not in err, err


def test_fake_data_without_torchvision_is_a_clean_error(tmp_path, capsys):
    try:
        import torchvision  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("torchvision is installed: FakeData trains")
    spec = write_spec(tmp_path, "FakeData(size=16, image_size=(1, 2, 2), num_classes=3)",
                      model="model Net(x: [B, 1, 2, 2]) { f = Flatten(); fc = Linear(4, 3) }\n")
    rc, err = cli_stderr(capsys, "train", str(spec), "--no-progress", "--out", str(tmp_path / "out"))
    assert "internal error" not in err, err
    assert rc == 1 and "torchvision" in err, err


# ---------------------------------------------------------------- what a review of training found, pinned
MIXED_NET = "model Net(x: [B, 4]) { fc = Linear(4, 3) }\n"


def synthetic(n: int = 16) -> str:
    return f"{{ x = torch.randn({n}, 4); y = torch.randint(0, 3, ({n},)) }}"


def write_block_spec(folder: Path, *, model: str = MIXED_NET, target: str = "y: Long[B]", extra: str = "",
                     data: str | None = None, optimizer: str = "SGD(lr=0.1)") -> Path:
    path = folder / "net.nnspec"
    path.write_text(model + "train Net {\n" f"    target {target}\n"
                    f"    data {data or synthetic()}\n" "    loss = CrossEntropyLoss()\n"
                    f"    optimizer = {optimizer}\n    epochs = 2\n    batch_size = 4\n" + extra + "}\n",
                    encoding="utf-8")
    return path


def test_an_input_named_like_the_scripts_own_names_is_refused(tmp_path):
    model = ("model Net(pred: [B, 4], pred_: [B, 4]) {\n    fc = Linear(4, 3)\n"
             "    forward(pred, pred_) { return fc(pred + pred_) }\n}\n")
    spec = write_block_spec(tmp_path, model=model, data="{ pred = torch.randn(8, 4); pred_ = torch.randn(8, 4); "
                                                        "y = torch.randint(0, 3, (8,)) }")
    with pytest.raises(SpecError, match="the model input is named 'pred', which the training script uses"):
        modelspec.elaborate_spec(spec)
    spec = write_block_spec(tmp_path, data="{ rows = torch.randn(8, 4); x = rows; y = torch.randint(0, 3, (8,)) }")
    with pytest.raises(SpecError, match="named 'rows'"):
        modelspec.elaborate_spec(spec)


def test_a_target_named_like_a_setting_takes_the_settings_override(tmp_path):
    spec = write_block_spec(tmp_path, target="epochs: Long[B]",
                            data="{ x = torch.randn(8, 4); epochs = torch.randint(0, 3, (8,)) }")
    result = modelspec.train(spec, epochs=1, device="cpu", progress=False, echo=lambda line: None)
    assert len(result.history) == 1


def test_a_csv_with_a_byte_order_mark_and_characters_beyond_the_bmp_trains(tmp_path):
    (tmp_path / "p😀.csv").write_text("\ufeffa,b,c,d,lab😀\n" + "".join(f"{i},1,2,3,{i % 3}\n" for i in range(12)),
                                     encoding="utf-8")
    spec = write_spec(tmp_path, 'load("p😀.csv", x=["a", "b", "c", "d"], y="lab😀")')
    from modelspec.trainscript import training_script

    assert 'open("' in training_script(modelspec.elaborate_spec(spec)) and "😀" in spec.read_text()
    result = modelspec.train(spec, progress=False, echo=lambda line: None)
    assert len(result.history) == 1


@pytest.mark.parametrize("optimizer", ["SparseAdam(lr=0.01)", "Muon(lr=0.02)"])
def test_an_optimizer_that_refuses_the_models_parameters_is_refused_by_check(tmp_path, optimizer):
    spec = write_block_spec(tmp_path, optimizer=optimizer)
    with pytest.raises(SpecError, match="cannot train this model from a train section"):
        modelspec.elaborate_spec(spec)


def test_one_cycle_with_too_few_total_steps_is_a_clean_error(tmp_path):
    spec = write_block_spec(tmp_path, extra="    scheduler = OneCycleLR(max_lr=0.1, total_steps=3)\n")
    with pytest.raises(SpecError, match="total_steps=3, but 2 epochs of 4 batches take 8 steps"):
        modelspec.train(spec, progress=False, echo=lambda line: None)


def test_resume_refuses_a_checkpoint_of_another_optimizer_and_files_that_are_none(tmp_path):
    spec = write_block_spec(tmp_path)
    quiet = dict(progress=False, echo=lambda line: None)
    modelspec.train(spec, out=str(tmp_path / "o"), **quiet)
    with pytest.raises(SpecError, match="was trained with optimizer torch.optim.SGD"):
        modelspec.train(spec, out=str(tmp_path / "o"), resume=True, settings={"optimizer": "Adam(lr=0.1)"}, **quiet)
    with pytest.raises(SpecError, match="holds 2 epochs already, and the spec asks for 1"):
        modelspec.train(spec, out=str(tmp_path / "o"), resume=True, epochs=1, **quiet)
    with pytest.raises(SpecError, match="no checkpoint of modelspec train"):
        modelspec.train(spec, resume=str(tmp_path / "o" / "Net.pt"), **quiet)
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(SpecError, match="is not a checkpoint that modelspec train wrote"):
        modelspec.train(spec, resume=str(tmp_path / "garbage.pt"), **quiet)


def test_nproc_with_a_batch_that_does_not_split_stops_before_any_process_starts(tmp_path, capsys):
    spec = write_block_spec(tmp_path, extra="")
    spec.write_text(spec.read_text().replace("batch_size = 4", "batch_size = 7"))
    assert main(["train", str(spec), "--nproc", "2"]) == 2
    assert "does not split evenly over 2 processes" in capsys.readouterr().err


def test_accuracy_of_several_predictions_a_sample_stays_a_fraction(tmp_path):
    model = "model Net(x: [B, 3, 4, 4]) { conv = Conv2d(3, 5, 1) }\n"
    spec = write_block_spec(tmp_path, model=model, target="y: Long[B, 4, 4]",
                            data="{ x = torch.randn(16, 3, 4, 4); y = torch.randint(0, 5, (16, 4, 4)) }")
    history = modelspec.train(spec, progress=False, echo=lambda line: None).history
    assert all(0 <= m["accuracy"] <= 1 for m in history), history


def test_a_set_holds_one_setting(tmp_path):
    spec = write_block_spec(tmp_path)
    with pytest.raises(SpecError, match="one setting a --set"):
        modelspec.train(spec, settings={"epochs": "2; seed = 1"}, progress=False, echo=lambda line: None)


def test_sparse_tensors_and_labels_past_int64_are_data_errors(tmp_path):
    import torch

    torch.save({"x": torch.randn(8, 4).to_sparse(), "y": torch.randint(0, 3, (8,))}, tmp_path / "s.pt")
    with pytest.raises(SpecError, match="is a sparse tensor"):
        modelspec.train(write_spec(tmp_path, 'load("s.pt")'), progress=False, echo=lambda line: None)
    write_csv(tmp_path / "big.csv", [[1, 2, 3, 4, 10 ** 20]] + [[1, 2, 3, 4, 0]] * 7)
    with pytest.raises(SpecError, match="too large for a Long"):
        modelspec.train(write_spec(tmp_path, 'load("big.csv", x=["a", "b", "c", "d"], y="label")'), progress=False,
                        echo=lambda line: None)
