"""Training: `modelspec train`, `modelspec.train`, the printed training script, checkpoints and DDP.

The promise held here: the script `codegen --train` prints, run where modelspec cannot be imported, computes
the same losses as `modelspec train`, bit for bit, epoch by epoch; a resumed run continues as if it had
never stopped; Ctrl-C leaves a checkpoint; and two processes under torchrun (gloo, 127.0.0.1) end with one
set of weights, the single-process run's.
"""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from conftest import ROOT  # noqa: E402
from modelspec import SpecError, elaborate_spec, summarize, train  # noqa: E402
from modelspec.trainscript import training_script  # noqa: E402

MODELSPEC = [sys.executable, "-m", "modelspec"]
QUIET = dict(progress=False, echo=lambda line: None)

# randn data, a shuffled loader, dropout, a validation split, accuracy and a scheduler: every generator the
# loop draws from
MIXED = """
model Net(x: [B, 4]) {
    net = Sequential(Linear(4, 16), ReLU(), Dropout(0.2), Linear(16, 3))
}

train Net {
    data {
        x = torch.randn(96, 4)
        y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    }
    target y: Long[B]
    validation = 0.25
    loss = CrossEntropyLoss(label_smoothing=0.1)
    optimizer = Adam(lr=0.01)
    scheduler = StepLR(step_size=2, gamma=0.5)
    epochs = 4
    batch_size = 16
    seed = 3
}
"""


def write(tmp_path: Path, text: str, name: str = "net.nnspec") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def run_without_modelspec(script: Path, *args: str, cwd: Path, module: str | None = None) -> str:
    """Run a printed script where `import modelspec` fails, as on a machine without it."""
    block = ("import sys, runpy; sys.modules['modelspec'] = None; sys.argv = [sys.argv[1]]; "
             "runpy.run_path(sys.argv[0], run_name='__main__')")
    cmd = [sys.executable, "-c", block, str(script)] if module is None else [sys.executable, "-m", module, *args,
                                                                                 str(script)]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def epochs_printed(stdout: str) -> list[dict]:
    out = []
    for line in stdout.splitlines():
        if line.startswith("epoch "):
            out.append(ast.literal_eval(line.split(": ", 1)[1]))
    return out


def test_linear_regression_reaches_the_tutorials_weights(tmp_path):
    result = train(ROOT / "specs" / "linear_regression.nnspec", out=str(tmp_path), **QUIET)
    w, b = result.model.linear.weight.item(), result.model.linear.bias.item()
    assert abs(w - 10.0) <= 0.01 and abs(b - 4.99) <= 0.02, (w, b)
    assert len(result.history) == 1000 and result.history[-1]["loss"] < result.history[0]["loss"]
    saved = torch.load(tmp_path / "LinearRegression.pt", weights_only=True)
    assert torch.equal(saved["linear.weight"], result.model.linear.weight.detach())


def test_the_printed_script_trains_bitwise_like_modelspec_train(tmp_path):
    spec = write(tmp_path, MIXED)
    graph = elaborate_spec(spec)
    script = tmp_path / "train_net.py"
    script.write_text(training_script(graph))
    assert "modelspec" not in script.read_text().split('"""', 2)[2]  # nothing after the docstring names it
    printed = epochs_printed(run_without_modelspec(script, cwd=tmp_path))
    ours = train(spec, out=str(tmp_path / "run"), device="cpu", **QUIET).history
    assert len(printed) == 4 and set(printed[0]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert printed == ours  # floats compared exactly: the same bits
    from_script = torch.load(tmp_path / "Net.pt", weights_only=True)
    from_ours = torch.load(tmp_path / "run" / "Net.pt", weights_only=True)
    assert all(torch.equal(from_script[k], from_ours[k]) for k in from_script)


def test_a_seed_override_changes_the_run_and_is_repeatable(tmp_path):
    spec = write(tmp_path, MIXED)
    a = train(spec, seed=1, epochs=2, out=str(tmp_path / "a"), **QUIET).history
    b = train(spec, seed=1, epochs=2, out=str(tmp_path / "b"), **QUIET).history
    c = train(spec, seed=2, epochs=2, out=str(tmp_path / "c"), **QUIET).history
    assert a == b and a != c


def test_resume_continues_as_if_it_had_never_stopped(tmp_path):
    spec = write(tmp_path, MIXED)
    whole = train(spec, out=str(tmp_path / "whole"), **QUIET)
    train(spec, epochs=2, out=str(tmp_path / "part"), **QUIET)
    resumed = train(spec, out=str(tmp_path / "part"), resume=True, **QUIET)
    assert resumed.history == whole.history
    state = torch.load(tmp_path / "part" / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 4 and set(state) >= {"model", "optimizer", "scheduler", "history"}
    for k, v in whole.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k])


def test_resume_without_a_checkpoint_is_a_clear_error(tmp_path):
    spec = write(tmp_path, MIXED)
    with pytest.raises(SpecError, match="no checkpoint at"):
        train(spec, out=str(tmp_path / "none"), resume=True, **QUIET)


def test_ctrl_c_saves_a_checkpoint_before_it_exits(tmp_path):
    spec = ROOT / "specs" / "linear_regression.nnspec"
    # Ctrl-C as a terminal sends it: a process started in the background by a shell without job control (a CI
    # runner's) inherits SIGINT ignored, and Python then installs no KeyboardInterrupt for it
    proc = subprocess.Popen([*MODELSPEC, "train", str(spec), "--epochs", "1000000", "--out", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not (tmp_path / "checkpoint.pt").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else "slow"
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted in epoch" in err and "Traceback" not in err
    partial = torch.load(tmp_path / "interrupted.pt", weights_only=True)
    whole = torch.load(tmp_path / "checkpoint.pt", weights_only=True)  # the last whole epoch, still whole
    assert partial["partial"] and not whole["partial"] and whole["epoch"] >= 1
    assert not list(tmp_path.glob("*.tmp*")), "a half-written checkpoint was left"


def test_json_prints_one_object_with_the_metrics_and_the_weights(tmp_path):
    spec = write(tmp_path, MIXED)
    done = subprocess.run([*MODELSPEC, "train", str(spec), "--epochs", "2", "--out", str(tmp_path / "o"), "--json"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)  # the whole of stdout: one object
    assert out["epochs"] == 2 and set(out["metrics"]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert Path(out["weights"]).is_file() and out["weights"].endswith("Net.pt")
    assert "epoch 2/2" in done.stderr  # the epoch lines go to stderr with --json


def test_settings_from_the_command_line_are_checked_like_the_spec(tmp_path):
    spec = write(tmp_path, MIXED)
    with pytest.raises(SpecError, match="unknown optimizer"):
        train(spec, settings={"optimizer": "Adamm(lr=0.1)"}, **QUIET)
    done = subprocess.run([*MODELSPEC, "train", str(spec), "--set", "epochz=3"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 1 and "no setting 'epochz'" in done.stderr and "did you mean epochs" in done.stderr
    result = train(spec, settings={"optimizer": "SGD(lr=0.05)", "epochs": 1}, out=str(tmp_path / "o"), **QUIET)
    assert isinstance(result.model, torch.nn.Module) and len(result.history) == 1


def test_summary_shows_the_train_section():
    s = summarize(ROOT / "specs" / "mnist_mlp.nnspec")
    rows = dict(s.train)
    assert rows["loss"].startswith("nn.CrossEntropyLoss()")
    assert rows["optimizer"] == "torch.optim.SGD(model.parameters(), lr=0.001)"
    assert rows["batch size"] == "64" and "FashionMNIST" in rows["data"]
    assert "Training:" in s.table() and s.to_dict()["train"]["epochs"] == "10"


def test_a_relu_or_softmax_before_cross_entropy_is_a_warning_not_an_error(tmp_path):
    text = (ROOT / "specs" / "mnist_mlp.nnspec").read_text().replace("Linear(512, 10),", "Linear(512, 10),\n"
                                                                                          "        ReLU(),")
    spec = write(tmp_path, text)
    graph = elaborate_spec(spec)
    (w,) = graph.warnings
    assert "CrossEntropyLoss takes raw scores" in w.message and "ReLU" in w.message
    assert w.name == "activation-before-loss"
    done = subprocess.run([*MODELSPEC, "check", str(spec)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and ": warning: CrossEntropyLoss takes raw scores" in done.stderr
    assert done.stderr.split("\n")[0].endswith(" [activation-before-loss]")
    softmax = text.replace("ReLU(),\n    )", "Softmax(dim=1),\n    )")
    assert "softmax" in elaborate_spec(write(tmp_path, softmax, "s.nnspec")).warnings[0].message
    assert not elaborate_spec(ROOT / "specs" / "mnist_mlp.nnspec").warnings


@pytest.mark.parametrize("optimizer, scheduler", [
    ("LBFGS(lr=0.5, max_iter=4)", None),
    ("SGD(lr=0.05, momentum=0.9)", "OneCycleLR(max_lr=0.1)"),
    ("RMSprop(lr=0.01)", "ReduceLROnPlateau(patience=1)"),
    ("AdamW(lr=0.01, betas=(0.8, 0.99))", "CosineAnnealingLR(T_max=3)"),
])
def test_optimizers_and_schedulers_train_alike_in_the_script(tmp_path, optimizer, scheduler):
    text = MIXED.replace("optimizer = Adam(lr=0.01)", f"optimizer = {optimizer}")
    text = text.replace("scheduler = StepLR(step_size=2, gamma=0.5)", f"scheduler = {scheduler}" if scheduler else "")
    text = text.replace("epochs = 4", "epochs = 3")
    spec = write(tmp_path, text)
    script = tmp_path / "s.py"
    script.write_text(training_script(elaborate_spec(spec)))
    printed = epochs_printed(run_without_modelspec(script, cwd=tmp_path))
    ours = train(spec, out=str(tmp_path / "o"), **QUIET).history
    assert printed == ours and len(ours) == 3
    assert all(torch.isfinite(torch.tensor(m["loss"])) for m in ours)


# ---------------------------------------------------------------- several processes
DDP_SPEC = """
model Net(x: [B, 4]) {
    net = Sequential(Linear(4, 8), Tanh(), Linear(8, 1))
}

train Net {
    data {
        x = torch.randn(64, 4)
        y = x.sum(1, keepdim=True) * 0.5
    }
    target y: [B, 1]
    loss = MSELoss()
    optimizer = SGD(lr=0.1, momentum=0.9)
    epochs = 3
    batch_size = 16
    shuffle = SHUFFLE
}
"""


# The tests that start process groups run one after another: make test runs a file's tests in one xdist worker
# (--dist loadfile), since two torchrun jobs at once on a small machine crash a gloo process now and then.
@pytest.mark.parametrize("shuffle", [False, True])
def test_two_processes_with_gloo_end_as_one(tmp_path, shuffle):
    spec = write(tmp_path, DDP_SPEC.replace("SHUFFLE", str(shuffle)))
    two = subprocess.run([*MODELSPEC, "train", str(spec), "--nproc", "2", "--out", str(tmp_path / "two"), "--json",
                          "--device", "cpu"], capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    out = json.loads(two.stdout.strip().splitlines()[-1])
    assert out["ranks"] == 2 and out["max_rank_difference"] == 0.0  # both ranks hold the same weights, bitwise
    ddp = torch.load(tmp_path / "two" / "Net.pt", weights_only=True)
    if not shuffle:  # the same global batches as one process: the same training, up to float rounding
        one = train(spec, out=str(tmp_path / "one"), device="cpu", **QUIET)
        for k, v in one.model.state_dict().items():
            torch.testing.assert_close(ddp[k], v, rtol=1e-5, atol=1e-6)
    else:  # a DistributedSampler's order: the printed distributed script under torchrun, one process
        script = tmp_path / "ddp.py"
        script.write_text(training_script(elaborate_spec(spec), distributed=True))
        run_without_modelspec(script, "--nproc-per-node", "1", "--master-addr", "127.0.0.1", "--master-port",
                              str(_free_port()), cwd=tmp_path, module="torch.distributed.run")
        single = torch.load(tmp_path / "Net.pt", weights_only=True)
        for k, v in single.items():
            torch.testing.assert_close(ddp[k], v, rtol=1e-5, atol=1e-6)


def test_the_printed_distributed_script_runs_under_torchrun(tmp_path):
    spec = write(tmp_path, DDP_SPEC.replace("SHUFFLE", "False"))
    script = tmp_path / "ddp.py"
    script.write_text(training_script(elaborate_spec(spec), distributed=True))
    out = run_without_modelspec(script, "--nproc-per-node", "2", "--master-addr", "127.0.0.1", "--master-port",
                                str(_free_port()), cwd=tmp_path, module="torch.distributed.run")
    assert len(epochs_printed(out)) == 3  # printed by rank 0 alone
    two = torch.load(tmp_path / "Net.pt", weights_only=True)
    one = train(spec, out=str(tmp_path / "one"), device="cpu", **QUIET)
    for k, v in one.model.state_dict().items():
        torch.testing.assert_close(two[k], v, rtol=1e-5, atol=1e-6)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- torchvision (an optional extra)
def test_the_fashion_mnist_mlp_learns_on_fake_data(tmp_path):
    pytest.importorskip("torchvision", reason="torchvision (the vision extra) is not installed")
    fake = "datasets.FakeData(size=256, image_size=(1, 28, 28), num_classes=10)"
    result = train(ROOT / "specs" / "mnist_mlp.nnspec", epochs=4, out=str(tmp_path), device="cpu",
                   settings={"data": fake, "validation": "0.25"}, **QUIET)
    losses = [m["loss"] for m in result.history]
    assert losses[-1] < losses[0], losses
    assert set(result.history[0]) == {"loss", "accuracy", "val_loss", "val_accuracy"}


def test_a_torchvision_script_runs_without_modelspec(tmp_path):
    pytest.importorskip("torchvision", reason="torchvision (the vision extra) is not installed")
    text = (ROOT / "specs" / "mnist_mlp.nnspec").read_text()
    text = text.replace('datasets.FashionMNIST(root="data", train=True, download=True)',
                        "datasets.FakeData(size=128, image_size=(1, 28, 28))")
    text = text.replace('datasets.FashionMNIST(root="data", train=False, download=True)',
                        "datasets.FakeData(size=64, image_size=(1, 28, 28), random_offset=1000)")
    text = text.replace("epochs = 10", "epochs = 2")
    spec = write(tmp_path, text)
    script = tmp_path / "s.py"
    script.write_text(training_script(elaborate_spec(spec)))
    assert "from torchvision import datasets" in script.read_text()
    printed = epochs_printed(run_without_modelspec(script, cwd=tmp_path))
    assert printed == train(spec, out=str(tmp_path / "o"), **QUIET).history


# ---------------------------------------------------------------- the documentation's examples
def _doc_trains():
    from test_language_doc import SPECS

    return [b for b in SPECS if "\ntrain " in "\n" + b.text]


@pytest.mark.parametrize("block", _doc_trains(), ids=lambda b: f"line{b.line}")
def test_every_train_example_of_the_language_doc_trains(block, tmp_path):
    from test_language_doc import write_files

    if "datasets." in block.text:
        pytest.importorskip("torchvision", reason="torchvision (the vision extra) is not installed")
    write_files(tmp_path)
    spec = write(tmp_path, block.text, "example.nnspec")
    result = train(spec, epochs=1, out=str(tmp_path / "out"), device="cpu", **QUIET)
    assert len(result.history) == 1 and all(v == v for v in result.history[0].values())  # no nan


def test_a_train_section_is_checked_without_torch():
    code = ("import sys; from modelspec.pipeline import load_graph; from modelspec.summary import summarize; "
            "from modelspec.trainscript import training_script; "
            "[summarize(f) and training_script(load_graph(f)) for f in sys.argv[1:]]; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    specs = [str(ROOT / "specs" / n) for n in ("linear_regression.nnspec", "mnist_mlp.nnspec")]
    done = subprocess.run([sys.executable, "-c", code, *specs], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_the_progress_bar_shows_on_request_and_not_on_a_pipe(tmp_path, capsys):
    spec = write(tmp_path, MIXED)
    train(spec, epochs=1, progress=True, echo=lambda line: None)
    assert "epoch 1/1" in capsys.readouterr().err  # tqdm's bar, on stderr
    done = subprocess.run([*MODELSPEC, "train", str(spec), "--epochs", "1", "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "batch/s" not in done.stderr and "it/s" not in done.stderr
    assert "epoch 1/1: loss" in done.stdout


def test_strings_of_a_spec_cannot_become_code_in_the_script(tmp_path):
    """A file name or a column that holds quotes, a newline escape or a comment stays a string literal."""
    import ast as python_ast

    name = 'x"""; import os #\'.csv'
    column = "a\"]); import os; ("
    (tmp_path / name).write_text(f'"{column.replace(chr(34), chr(34) * 2)}",b\n1,2\n3,4\n')
    spec_name = name.replace("\\", "\\\\").replace('"', '\\"')
    col = column.replace('"', '\\"')
    spec = write(tmp_path, f'model Net(x: [B, 1]) {{ fc = Linear(1, 1) }}\ntrain Net {{\n    target y: [B, 1]\n'
                           f'    data = load("{spec_name}", x=["{col}"], y=["b"])\n    loss = MSELoss()\n'
                           f'    optimizer = SGD(lr=0.1)\n    epochs = 1\n    batch_size = 2\n}}\n')
    script = training_script(elaborate_spec(spec))
    tree = python_ast.parse(script)
    imports = [n for n in python_ast.walk(tree) if isinstance(n, (python_ast.Import, python_ast.ImportFrom))]
    assert all(not isinstance(n, python_ast.Import) or n.names[0].name in ("csv", "torch", "torch.nn")
               for n in imports), [python_ast.unparse(n) for n in imports]
    strings = {n.value for n in python_ast.walk(tree) if isinstance(n, python_ast.Constant)}
    assert column in strings and any(s.endswith(name) for s in strings if isinstance(s, str))
    result = train(spec, out=str(tmp_path / "o"), **QUIET)
    assert len(result.history) == 1
