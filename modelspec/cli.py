"""The `modelspec` command: wires the stages together, nothing more."""

from __future__ import annotations

import argparse
import errno
import os
import sys
import time
from pathlib import Path

from .errors import WARNINGS, SpecError, WarningPolicy

# Every example starts from a spec that `modelspec examples` writes, so that it runs as printed after a pip
# install, with no checkout of the repository at hand
EXAMPLES = {
    "check": "examples:\n  modelspec examples cnn > cnn.nnspec    (a bundled spec; `modelspec examples` lists them)\n"
    "  modelspec check cnn.nnspec\n  modelspec check *.nnspec\n  modelspec examples vit | modelspec check -\n"
    "  modelspec check -W error -W no-unused-child *.nnspec   (warnings fail, but for one)\n\n"
    "A line's own warning is silenced by a comment on it: # nowarn: unused-child",
    "codegen": "examples:\n  modelspec examples cnn > cnn.nnspec\n  modelspec codegen cnn.nnspec\n"
    "  modelspec codegen cnn.nnspec -o cnn.py",
    "summary": "examples:\n  modelspec examples cnn > cnn.nnspec\n  modelspec summary cnn.nnspec\n"
    "  modelspec summary cnn.nnspec --batch 32\n  modelspec summary cnn.nnspec --json\n"
    "  modelspec examples resnet18 | modelspec summary - --depth 2",
    "graph": "examples:\n  modelspec examples inception > inception.nnspec\n"
    "  modelspec graph inception.nnspec > inception.dot\n"
    "  modelspec graph inception.nnspec -o inception.svg        (the format as the suffix says)\n"
    "  modelspec graph inception.nnspec -o inception.html --rankdir LR   (a page any browser draws)\n"
    "  modelspec examples resnet18 | modelspec graph - --depth 2 --format mermaid",
    "run": "examples:\n  modelspec examples cnn > cnn.nnspec\n  modelspec run cnn.nnspec\n"
    "  modelspec run cnn.nnspec --batch 64 --device cuda\n"
    "  modelspec examples mnist_mlp > mnist_mlp.nnspec\n  modelspec run mnist_mlp.nnspec --show\n"
    "  modelspec run mnist_mlp.nnspec --input images.pt      # torch.save(x, 'images.pt'), x: [N, 1, 28, 28]",
    "fmt": "examples:\n  modelspec examples cnn > cnn.nnspec\n  modelspec fmt *.nnspec\n"
    "  modelspec fmt --check *.nnspec\n"
    "  modelspec fmt - < messy.nnspec > tidy.nnspec",
    "ir": "examples:\n  modelspec examples cnn > cnn.nnspec\n  modelspec ir cnn.nnspec --json\n"
    "  modelspec ir cnn.nnspec --json > cnn.ir.json",
    "schema": "examples:\n  modelspec schema > nnspec-ir.schema.json",
    "export": "examples:\n  modelspec examples cnn > cnn.nnspec\n"
    "  modelspec export cnn.nnspec                  (CNN.onnx, its weights random)\n"
    "  modelspec export cnn.nnspec -o cnn.pt2       (the format as the suffix says)\n"
    "  modelspec export cnn.nnspec --format torchscript\n"
    "  modelspec examples mnist_mlp > mnist_mlp.nnspec\n  modelspec train mnist_mlp.nnspec --out runs/mlp\n"
    "  modelspec export mnist_mlp.nnspec --weights runs/mlp/NeuralNetwork.pt",
    "lsp": "examples:\n  modelspec lsp        (an editor starts it, and speaks to it on stdin and stdout)",
    "serve": "examples:\n  modelspec serve                        (the bundled specs, at http://127.0.0.1:8000/)\n"
    "  modelspec examples cnn > cnn.nnspec\n  modelspec serve cnn.nnspec --open      (edit it in the browser; Save "
    "writes it)\n  modelspec serve --port 0               (any free port: the URL printed says which)\n"
    "  modelspec serve --export site          (every bundled spec as static pages, for any web host)\n"
    "  modelspec serve --export site cnn.nnspec    (that one alone)",
    "from-torch": "examples:\n  modelspec from-torch torchvision.models:resnet18 -o resnet18.nnspec\n"
    "  modelspec from-torch torchvision.models:vit_b_16 --input \"x: [B, 3, 224, 224]\"\n"
    "  modelspec from-torch model.py:Net --args \"num_classes=10\" --input \"x: [B, 1, 28, 28]\"\n"
    "  modelspec from-torch model.py:Net --strict    (a construct without a spec form is an error, not a TODO)\n\n"
    "Importing TARGET runs its Python code, as importing it anywhere does. The spec written never runs code.",
    "examples": "examples:\n  modelspec examples                        (each one's name, and what it is)\n"
    "  modelspec examples cnn > cnn.nnspec       (write one, to read, change and run)\n"
    "  modelspec examples tutorials/conv > conv.nnspec\n  modelspec examples cnn | modelspec check -",
    "train": "examples:\n  modelspec examples linear_regression > linear_regression.nnspec\n"
    "  modelspec train linear_regression.nnspec\n"
    "  modelspec examples mnist_mlp > mnist_mlp.nnspec\n"
    "  modelspec train mnist_mlp.nnspec --epochs 2 --out runs/mlp\n"
    "  modelspec train mnist_mlp.nnspec --out runs/mlp --resume\n"
    "  modelspec train mnist_mlp.nnspec --set 'data=FakeData(size=256, image_size=(1, 28, 28))'\n"
    "  modelspec train mnist_mlp.nnspec --nproc 2 --json\n\n"
    "On several machines, start the same command on each under torchrun:\n"
    "  torchrun --nnodes 2 --node-rank R --master-addr HOST --master-port 29500 --nproc-per-node G \\\n"
    "      -m modelspec train spec.nnspec --out runs/x",
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="modelspec",
        description="Compile .nnspec model specs into PyTorch: check them, print their code, "
        "summarise their shapes, or run them.",
        epilog="examples:\n  modelspec examples                     (the example specs installed with modelspec)\n"
        "  modelspec examples cnn > cnn.nnspec\n  modelspec check cnn.nnspec\n  modelspec summary cnn.nnspec\n"
        "  modelspec codegen cnn.nnspec -o cnn.py\n  modelspec run cnn.nnspec --batch 8\n\n"
        "Run 'modelspec COMMAND --help' for a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from .version import __version__

    p.add_argument("--version", action="version", version=f"modelspec {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    p.commands = sub.choices  # name -> the command's parser

    def command(name, help_):
        c = sub.add_parser(name, help=help_, description=help_, epilog=EXAMPLES[name],
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        if name in ("check", "codegen", "summary", "graph", "run", "train", "export", "serve"):
            from .values import Limits

            c.add_argument("--max-params", type=_count, default=None, metavar="N",
                           help=f"refuse a model with more parameters than this (default {Limits.max_params:,}; "
                           "1e10 and 10_000_000_000 are read too)")
            c.add_argument("--max-activations", type=_count, default=None, metavar="BYTES",
                           help="refuse a model whose inputs and forward activations take more than this many "
                           f"bytes (at batch 1; for run, at --batch) (default {Limits.max_activation_bytes:,}: "
                           "8 GiB; 32e9 is read too)")
            c.add_argument("--import-root", action="append", type=_folder, default=None, metavar="DIR",
                           help="let imports also read .nnspec files under DIR (repeat for several); by default "
                           "an import may read only inside the folder of the file named, and its subfolders")
            c.add_argument("-W", action="append", type=_warning_option, default=[], metavar="WHAT", dest="warn",
                           help="-W error: warnings are errors (exit 1); -W error=NAME: that one; -W no-NAME: "
                           "do not show that one; -W no-error=NAME: keep it a warning. The warnings: "
                           + ", ".join(WARNINGS))
        return c

    c = command("check", "check specs: syntax, names, arguments and every shape (no torch needed)")
    c.add_argument("files", nargs="+", metavar="FILE", help=".nnspec files; - reads stdin")
    c.add_argument("--model", help="the model to check when a file defines several (default: all)")
    c.add_argument("--format", choices=("text", "json", "sarif"), default="text",
                   help="text: as a compiler prints them, on stderr; json: every error and warning of every "
                   "file, located, with its code, on stdout; sarif: the same as SARIF 2.1.0, "
                   "which GitHub code scanning and other CI systems read (default text). The codes: "
                   "https://github.com/modelspec/modelspec/blob/main/docs/errors.md")

    c = command("codegen", "print the PyTorch source a spec stands for")
    c.add_argument("file", metavar="FILE", help="the .nnspec file; - reads stdin")
    c.add_argument("-o", "--output", metavar="OUT.py", help="write the code here instead of stdout")
    c.add_argument("--model", help="the model, when the file defines several")
    c.add_argument("--explain", action="store_true",
                   help="add comments saying what each layer and each operation of forward computes")
    c.add_argument("--train", action="store_true",
                   help="print the spec's training script instead: model, data, loss, optimizer and loop")
    c.add_argument("--distributed", action="store_true",
                   help="with --train: a script that also trains under torchrun (DistributedDataParallel)")

    c = command("summary", "a table of every layer: output shape, parameters, mult-adds")
    c.add_argument("file", metavar="FILE", help="the .nnspec file; - reads stdin")
    c.add_argument("--model", help="the model, when the file defines several")
    c.add_argument("--batch", type=int, default=1, metavar="N", help="batch size for mult-adds and memory (default 1)")
    c.add_argument("--depth", type=int, default=None, metavar="N",
                   help="show modules down to this depth; deeper ones count in their parent's row")
    c.add_argument("--json", action="store_true",
                   help="print the summary as JSON (total_params, trainable_params, total_mult_adds, rows, ...)")

    c = command("graph", "draw the model: layers with their key arguments and parameters as nodes, dataflow as "
                "edges labelled with shapes")
    c.add_argument("file", metavar="FILE", help="the .nnspec file; - reads stdin")
    c.add_argument("--model", help="the model, when the file defines several")
    c.add_argument("--format", choices=("dot", "mermaid", "html", "svg", "png", "pdf"), default=None,
                   help="dot, mermaid and html need nothing installed (html: one page that any browser draws, "
                   "offline); svg, png and pdf run Graphviz's dot; png and pdf go to -o or a pipe (default: "
                   "as -o's suffix says, .dot .mmd .html .svg .png .pdf; else dot)")
    from .graph import MAX_NODES

    c.add_argument("--depth", default="auto", metavar="N|all",
                   help="open blocks and Sequentials down to depth N; a deeper one is one node, which says how "
                   f"many layers it holds; all: open every one (default: all for a diagram of up to {MAX_NODES} "
                   f"nodes, else the deepest depth that keeps to {MAX_NODES})")
    c.add_argument("--rankdir", choices=("TB", "LR"), default="TB",
                   help="TB: top to bottom (default); LR: left to right, for a wide screen")
    c.add_argument("-o", "--output", metavar="OUT", help="write the diagram here instead of stdout")

    c = command("run", "build the model, run one forward pass on random input, report shapes and time")
    c.add_argument("file", metavar="FILE", help="the .nnspec file; - reads stdin")
    c.add_argument("--model", help="the model, when the file defines several")
    c.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
    c.add_argument("--batch", type=int, default=None, metavar="N", help="batch size of the random input (default 2)")
    c.add_argument("--seed", type=int, default=0, help="random seed for weights and input (default 0)")
    c.add_argument("--show", action="store_true",
                   help="also print the values: the inputs' and each output's first rows; for class scores "
                        "[B, C], the row sums (probabilities or logits?), their softmax and the predicted class "
                        "(argmax)")
    c.add_argument("--input", metavar="FILE.pt|FILE.npz",
                   help="run on the tensors of this file instead of random input, and show the values (as --show): "
                        "a .pt file (torch.save of a tensor, a tuple, or a dict by input name, loaded with "
                        "weights_only=True) or an .npz file (numpy.savez); each is checked against the spec's "
                        "inputs first, and sets the batch and any other symbolic dim")

    c = command("fmt", "rewrite specs in place in the canonical style, comments kept (like black)")
    c.add_argument("files", nargs="+", metavar="FILE", help=".nnspec files; - reads stdin and writes stdout")
    c.add_argument("--check", action="store_true",
                   help="change nothing: list the files that would change, and exit 1 if there are any")

    c = command("ir", "print the validated surface IR of a spec: what the parser understood")
    c.add_argument("file", metavar="FILE", help="the .nnspec file; - reads stdin")
    c.add_argument("--json", action="store_true",
                   help="as JSON, which ir.SpecFile.model_validate_json reads back (the only format so far)")

    command("schema", "print the JSON Schema of the surface IR that `modelspec ir --json` prints")

    c = command("train", "train a spec's model as its train section says: progress, checkpoints, --resume")
    c.add_argument("file", metavar="FILE", help="the .nnspec file; - reads stdin")
    c.add_argument("--model", help="the model, when the file defines several")
    c.add_argument("--epochs", type=int, default=None, metavar="N", help="train this many epochs in all")
    c.add_argument("--device", default=None, help='cpu, cuda, cuda:1, auto, ... (default: the spec\'s, else "auto")')
    c.add_argument("--seed", type=int, default=None, help="the seed of weights, shuffling and splits")
    c.add_argument("--batch-size", type=int, default=None, metavar="N", help="samples per step (all processes)")
    c.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="set a train setting, as the spec would write it: --set 'optimizer=Adam(lr=1e-3)'")
    c.add_argument("--out", default=".", metavar="DIR",
                   help="write checkpoint.pt (after every epoch) and MODEL.pt (the weights) here (default .)")
    c.add_argument("--resume", nargs="?", const=True, default=False, metavar="CHECKPOINT",
                   help="continue from DIR/checkpoint.pt, or from the checkpoint named")
    c.add_argument("--nproc", type=int, default=None, metavar="N",
                   help="train on N processes with DistributedDataParallel, started by torch.distributed.run")
    c.add_argument("--json", action="store_true",
                   help="print the final metrics and the weights' path as one JSON object on stdout")
    c.add_argument("--no-progress", action="store_true", help="no progress bar, even on a terminal")

    c = command("export", "export a spec's model for deployment: ONNX, torch.export's .pt2, or TorchScript, "
                "with the spec's symbolic dims dynamic and its input and output names")
    c.add_argument("file", metavar="FILE", help="the .nnspec file; - reads stdin")
    c.add_argument("--model", help="the model, when the file defines several")
    c.add_argument("--format", choices=("onnx", "pt2", "torchscript"), default=None,
                   help="onnx (needs the [export] extra: onnx, onnxscript, onnxruntime), pt2 (torch.export) or "
                   "torchscript (default: as -o's suffix says, .onnx, .pt2 or .pt; else onnx)")
    c.add_argument("-o", "--output", metavar="OUT", help="where to write it (default: the model's name, "
                   "with .onnx, .pt2 or .torchscript.pt, in the working directory); a file there is replaced "
                   "only when it holds an export of the same format")
    c.add_argument("--force", action="store_true",
                   help="replace -o's file even when it holds something else (weights, a checkpoint)")
    c.add_argument("--weights", metavar="FILE.pt", help="the weights to export: a state_dict (torch.save), as "
                   "the MODEL.pt or checkpoint.pt of modelspec train; without it they are random, from --seed")
    c.add_argument("--seed", type=int, default=0,
                   help="random seed of the weights (without --weights) and of the example inputs (default 0)")

    c = command("lsp", "run the language server an editor talks to over stdin and stdout (needs the [lsp] extra)")
    c.add_argument("--stdio", action="store_true",
                   help="speak on stdin and stdout: the only transport, and the default (editors' language "
                   "clients pass --stdio)")

    c = command("serve", "the playground: edit a spec in the browser and see its errors, code, shapes and diagram "
                "as you type (needs the [serve] extra)")
    c.usage = ("modelspec serve [FILE] [--host H] [--port N] [--open] [options]\n"
               "       modelspec serve --export DIR [FILE ...] [options]")
    c.add_argument("files", nargs="*", metavar="FILE",
                   help="the .nnspec file to edit (Save writes it back; a new name is created on the first save); "
                   "without one, the page starts on a bundled spec and its menu lists them all. With --export: "
                   "the specs to export (default: every bundled spec)")
    c.add_argument("--host", default="127.0.0.1",
                   help="the address to listen on (default 127.0.0.1: this machine alone can reach it)")
    c.add_argument("--port", type=int, default=8000, help="the port (default 8000; 0 picks a free one)")
    c.add_argument("--open", action="store_true", help="open the page in the web browser")
    c.add_argument("--export", metavar="DIR",
                   help="instead of serving, write read-only pages of the specs (code, shapes, diagram) to DIR, "
                   "which any web host serves as they are")

    c = command("from-torch", "write the spec of an existing PyTorch module: its blocks, children and forward, "
                "with the module's names, so that its weights load into the spec's model")
    c.add_argument("target", metavar="TARGET",
                   help="the module: package.module:callable (a class or a function that makes the module) or "
                   "path/to/file.py:Name")
    c.add_argument("--args", action="append", default=[], metavar="NAME=VALUE,...",
                   help="keyword arguments for TARGET's callable, as Python literals: --args \"num_classes=10\"")
    c.add_argument("--input", metavar="DECLS",
                   help="forward's inputs, declared as a model declares them: \"x: [B, 3, 224, 224]\", "
                   "\"idx: Long[B, T=64]\" (default: from the first layer that fixes the input's size)")
    c.add_argument("-o", "--output", metavar="OUT.nnspec", help="write the spec here instead of stdout")
    c.add_argument("--name", help="the model's name in the spec (default: the module's class name)")
    c.add_argument("--strict", action="store_true",
                   help="a construct without a spec form is an error, and nothing is written; without it, it is "
                   "a TODO(...) placeholder in the spec, which check refuses until it is written")
    c = command("examples", "list the example specs installed with modelspec, or print one")
    c.add_argument("name", nargs="?", metavar="NAME", help="the example to print (cnn, resnet18, tutorials/conv, ...)")
    return p


class UsageError(Exception):
    """A mistake in how modelspec was called, not in a spec (a bad -o path, an unknown device): one line on
    stderr, exit code 2, as argparse does for its own."""


# packages a command may need that modelspec does not install by itself: the module -> how to get it
OPTIONAL_PACKAGES = {
    "torch": "pip install torch",
    "onnx": 'pip install "modelspec[export]"',
    "onnxscript": 'pip install "modelspec[export]"',
    "onnxruntime": 'pip install "modelspec[export]"',
    "pygls": 'pip install "modelspec[lsp]"',
    "starlette": 'pip install "modelspec[serve]"',
    "uvicorn": 'pip install "modelspec[serve]"',
    "lsprotocol": 'pip install "modelspec[lsp]"',
    "torchvision": 'pip install "modelspec[vision]"',
}


def _count(text: str) -> int:
    """A count as people write it on a command line: 1000000, 1_000_000, 1e6."""
    try:
        value = int(text) if text.replace("_", "").isdigit() else int(float(text))
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"not a count: {text!r}") from None
    if value < 0 or (not text.replace("_", "").isdigit() and float(text) != value):
        raise argparse.ArgumentTypeError(f"not a count: {text!r}")
    return value


def _warning_option(text: str) -> str:
    """One -W option, checked: a misspelt warning name would otherwise turn nothing off."""
    try:
        WarningPolicy.parse([text])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _warned(args, warnings, show: bool = True) -> bool:
    """Print a spec's warnings on stderr, as -W says; True when one of them is an error."""
    failed = False
    for w in WarningPolicy.parse(args.warn).apply(warnings):
        if show:
            print(w.render(), file=sys.stderr, flush=True)
        failed |= w.as_error
    return failed


def _folder(text: str) -> str:
    """A folder that exists, for --import-root: a misspelt one would otherwise be a silent no-op."""
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"not a folder: {text!r}")
    return text


# the options that set a field of Limits: argparse's name for each -> the field
LIMIT_OPTIONS = {"max_params": "max_params", "max_activations": "max_activation_bytes", "import_root": "import_roots"}


def _limits(args):
    """The limits the command line asks for, or None for the defaults."""
    options = vars(args)
    given = {field: options[option] for option, field in LIMIT_OPTIONS.items() if options.get(option) is not None}
    if not given:
        return None
    from .values import Limits

    return Limits(**given)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    given = sys.argv[1:] if argv is None else list(argv)
    if given and not given[0].startswith("-") and given[0] not in COMMANDS:
        from .errors import did_you_mean

        near = did_you_mean(given[0], COMMANDS)
        print(f"modelspec: no command {given[0]!r}; {near or 'the commands: ' + ', '.join(COMMANDS)}",
              file=sys.stderr)
        return 2
    args, extra = parser.parse_known_args(argv)
    if extra:  # said by the command's own parser, whose usage then shows its options
        parser.commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    args._argv = list(argv) if argv is not None else None
    if args.command is None:
        _parser().print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except SpecError as err:
        print(err.render(), file=sys.stderr)
        return 1
    except UsageError as err:
        print(f"modelspec {args.command}: {err}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        top = (exc.name or "").partition(".")[0]
        if top not in OPTIONAL_PACKAGES:
            raise
        print(f"modelspec {args.command}: this needs {top}, which is not installed: {OPTIONAL_PACKAGES[top]}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `modelspec codegen x | head`: the reader left; nothing to report
        sys.stderr.close()
        return 0
    except Exception as exc:  # a bug in modelspec, not in the spec: say so briefly
        if os.environ.get("MODELSPEC_DEBUG"):
            raise
        print(f"modelspec: internal error: {type(exc).__name__}: {exc}\n"
              "this is a bug in modelspec; run again with MODELSPEC_DEBUG=1 for the traceback and report it",
              file=sys.stderr)
        return 3


def _source(path: str):
    """A FILE argument as the pipeline reads it: the path itself, or for ``-`` the text on stdin, named
    "<stdin>" in errors (its imports are read from the working directory)."""
    if path != "-":
        return path
    from .pipeline import SpecText

    return SpecText(sys.stdin.read(), "<stdin>")


def _write(path: str, data: str | bytes) -> None:
    """Write a command's output to ``-o``'s file; a folder that is not there is the caller's mistake (rc 2)."""
    try:
        if isinstance(data, str):
            with open(path, "w", encoding="utf-8") as f:
                f.write(data)
        else:
            with open(path, "wb") as f:
                f.write(data)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    print(f"wrote {path}", file=sys.stderr)


def cmd_check(args) -> int:
    from .errors import MAX_ERRORS
    from .pipeline import check_source

    if args.files.count("-") > 1:
        raise UsageError("- (stdin) can be read once; name it once")
    if args.format != "text":
        return _check_report(args)
    failed = 0
    for path in args.files:
        source = _source(path)
        path = "<stdin>" if path == "-" else path
        try:
            checked = check_source(source, model=args.model or None, limits=_limits(args))
            if not checked:
                print(f"{path}: ok (no model: a library, whose blocks are checked where a model uses them)",
                      flush=True)
                continue
            shown, warned = [], False
            for g in (got.graph for got in checked):
                outs = ", ".join(str(t) for t in g.outputs)
                shown.append(f"{g.name} -> {outs}, {g.total_params:,} params" + (", trains" if g.train else ""))
                warned |= _warned(args, g.warnings)
            if warned:
                failed += 1
                continue
            print(f"{path}: ok ({'; '.join(shown)})", flush=True)
        except SpecError as err:
            for got in err.checked:
                _warned(args, got.graph.warnings)
            found = [err, *err.more]  # the rest of the file, checked past the first error
            for each in found:
                print(each.render(), file=sys.stderr)
            if len(found) > 1:
                more = f" (it stops at {MAX_ERRORS}: there may be more)" if len(found) >= MAX_ERRORS else ""
                print(f"{path}: {len(found)} errors{more}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def _check_report(args) -> int:
    """`check --format json|sarif`: every error and warning of every file, as one document on stdout."""
    import json

    from .diagnostics import check, to_json, to_sarif

    policy = WarningPolicy.parse(args.warn)
    files = [("<stdin>" if path == "-" else path,
              check(_source(path), model=args.model or None, limits=_limits(args), policy=policy))
             for path in args.files]
    found = [d for _, got in files for d in got.diagnostics]
    report = to_json(files) if args.format == "json" else to_sarif(found)
    print(json.dumps(report, indent=2, ensure_ascii=False), flush=True)
    failed = any(d.severity == "error" for d in found)
    return 1 if failed else 0


def cmd_codegen(args) -> int:
    from .codegen import generate_code
    from .pipeline import load_graph

    graph = load_graph(_source(args.file), model=args.model, limits=_limits(args))
    if _warned(args, graph.warnings):
        return 1
    if args.train:
        from .trainscript import training_script

        if graph.train is None:
            raise SpecError(f"{graph.name} has no train section", path=args.file,
                            hint=f"add `train {graph.name} {{ loss = ...; optimizer = ...; data = ... }}`")
        code = training_script(graph, distributed=args.distributed)
    elif args.distributed:
        raise UsageError("--distributed goes with --train")
    else:
        code = generate_code(graph, explain=args.explain)
    if args.output:
        _write(args.output, code)
    else:
        sys.stdout.write(code)
    return 0


def cmd_summary(args) -> int:
    from .summary import summarize

    if args.batch < 1:
        raise UsageError("--batch must be at least 1")
    if args.depth is not None and args.depth < 0:
        raise UsageError("--depth must be 0 or more")
    # a spec that fails part-way still shows the modules built before the error, then the error
    summary = summarize(_source(args.file), model=args.model, batch=args.batch, depth=args.depth, partial=True,
                        limits=_limits(args))
    if _warned(args, summary.warnings):
        return 1
    print(summary.to_json() if args.json else summary.table(with_error=False), flush=True)
    if summary.error is not None:
        print(summary.error.render(), file=sys.stderr)
        return 1
    return 0


def cmd_graph(args) -> int:
    from .graph import BINARY_FORMATS, GraphvizError, GraphvizNotFound, draw, fold_depth
    from .pipeline import load_graph

    if args.depth not in ("all", "auto") and not args.depth.isdecimal():
        raise UsageError(f"--depth takes a number (0 or more) or all, not {args.depth!r}")
    args.format = _graph_format(args.format, args.output)
    if args.format in BINARY_FORMATS and not args.output and sys.stdout.isatty():
        raise UsageError(f"--format {args.format} is binary: write it to a file with -o model.{args.format}, "
                         "or redirect stdout")
    graph = load_graph(_source(args.file), model=args.model, limits=_limits(args))
    if _warned(args, graph.warnings):
        return 1
    depth = None if args.depth == "all" else fold_depth(graph) if args.depth == "auto" else int(args.depth)
    if args.depth == "auto" and depth is not None:
        print(f"modelspec graph: {graph.name} drawn to --depth {depth}, deeper blocks folded; "
              "--depth all draws every layer", file=sys.stderr)
    try:
        out = draw(graph, args.format, depth=depth, rankdir=args.rankdir)
    except GraphvizNotFound as exc:  # a program this command needs is not installed: like a missing package
        raise UsageError(str(exc)) from None
    except GraphvizError as exc:
        print(f"modelspec graph: {exc}", file=sys.stderr)
        return 1
    if args.output:
        _write(args.output, out)
    elif isinstance(out, bytes):
        sys.stdout.buffer.write(out)
        sys.stdout.flush()
    else:
        sys.stdout.write(out)
    return 0


# the suffix of -o that says each format of `graph`
GRAPH_SUFFIXES = {".dot": "dot", ".gv": "dot", ".mmd": "mermaid", ".html": "html", ".svg": "svg", ".png": "png",
                  ".pdf": "pdf"}


def _graph_format(asked: str | None, output: str | None) -> str:
    """`graph`'s format: as --format says, else as -o's suffix says, else dot; the two must agree."""
    suffix = GRAPH_SUFFIXES.get(os.path.splitext(output)[1].lower()) if output else None
    if asked is not None and suffix is not None and asked != suffix:
        raise UsageError(f"-o {output} says {suffix}, --format says {asked}: name the file .{asked}, "
                         f"or leave --format out")
    return asked or suffix or "dot"


def cmd_run(args) -> int:
    from .pipeline import check_batch_memory, load_graph as elaborate_spec
    from .build import make_inputs
    from .build import build_module
    from .codegen import generate_code
    from .runner import flat

    if args.batch is not None and args.batch < 1:
        raise UsageError("--batch must be at least 1")
    if args.batch is not None and args.input is not None:
        raise UsageError("--batch sizes the random input; with --input the file's tensors set the batch")
    batch = 2 if args.batch is None else args.batch
    limits = _limits(args)
    graph = elaborate_spec(_source(args.file), model=args.model, limits=limits)
    if _warned(args, graph.warnings):
        return 1
    if args.input is None:
        check_batch_memory(graph, batch, limits)  # before the model or its input exists
        given = None
    else:
        given = _run_inputs(args.input, graph, limits)
        if given is None:
            return 1
        batch = given.batch
        check_batch_memory(graph, batch or 1, limits, sizes=given.sizes)  # before the model exists
    torch = _torch()
    _device(torch, args.device)
    t0 = time.perf_counter()
    model = build_module(generate_code(graph), graph, device=args.device, seed=args.seed)
    built = time.perf_counter() - t0
    model.eval()
    if given is None:
        gen = torch.Generator(device=args.device).manual_seed(args.seed)
        inputs = make_inputs(graph, batch=batch, device=args.device, generator=gen)
    else:
        inputs = tuple(t.to(args.device) for t in given.tensors)
    try:
        with torch.no_grad():
            model(*inputs)  # warm-up
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            out = model(*inputs)
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            took = time.perf_counter() - t0
    except Exception as exc:
        if given is None:  # random input the spec's shapes allow: a failure is modelspec's
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"modelspec run: the forward pass fails on the inputs of {args.input}: {type(exc).__name__}: {first}",
              file=sys.stderr)
        return 1
    outs = out if isinstance(out, (tuple, list)) else (out,)
    if given is None:
        print(f"{graph.name} on {args.device}, batch {batch}")
    else:
        print(f"{graph.name} on {args.device}{f', batch {batch}' if batch else ''}, inputs from {args.input}")
    for (name, _), t in zip(graph.inputs, inputs):
        was = f" ({given.cast[name]} in the file)" if given is not None and name in given.cast else ""
        print(f"  input  {name}: {list(t.shape)} {str(t.dtype).removeprefix('torch.')}{was}")
    for i, t in enumerate(flat(outs)):
        print(f"  output {i}: {list(t.shape)} {str(t.dtype).removeprefix('torch.')}")
    params = sum(p.numel() for p in model.parameters())
    print(f"  parameters: {params:,}")
    print(f"  build: {built * 1000:.1f} ms, forward: {took * 1000:.2f} ms")
    if args.show or given is not None:
        from .runner import output_names, show_values

        print()
        given_inputs = [(name, t) for (name, _), t in zip(graph.inputs, inputs)]
        print("\n".join(show_values(list(flat(outs)), output_names(graph, out), given_inputs)))
    return 0


def _device(torch, text: str):
    """``--device``, held to what this machine has: a misspelt or absent device is a usage mistake (rc 2)."""
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise UsageError(f"unknown device {text!r}: say cpu, cuda, cuda:1 or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError("CUDA is not available on this machine; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(f"there is no {text}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise UsageError("MPS is not available on this machine; use --device cpu")
    elif device.type != "cpu":
        raise UsageError(f"modelspec runs a model on cpu, cuda or mps, not on {device.type}")
    return device


def _run_inputs(path: str, graph, limits):
    """`modelspec run --input`: the file's tensors, held to the spec's inputs; None once a misfit is printed."""
    from .runner import InputFileError, read_inputs
    from .values import Limits

    try:
        return read_inputs(path, graph, (limits or Limits()).max_activation_bytes)
    except InputFileError as err:
        print(f"modelspec run: {err}", file=sys.stderr)
        return None


def cmd_fmt(args) -> int:
    from .fmt import format_file, format_spec

    changed = failed = 0
    for path in args.files:
        try:
            if path == "-":
                text = sys.stdin.read()
                formatted = format_spec(text, "<stdin>")
                sys.stdout.write("" if args.check else formatted)
                differs = formatted != text
            else:
                differs = format_file(path, write=not args.check)
        except SpecError as err:
            print(err.render(), file=sys.stderr)
            failed += 1
            continue
        changed += differs
        if differs and (args.check or path != "-"):
            print(f"{'would reformat' if args.check else 'reformatted'} {path}", file=sys.stderr)
    if args.files != ["-"]:
        print(_fmt_summary(changed, len(args.files) - changed - failed, failed, args.check), file=sys.stderr)
    return 1 if failed or (args.check and changed) else 0


def _fmt_summary(changed: int, same: int, failed: int, check: bool) -> str:
    files = lambda n: f"{n} file{'s' if n != 1 else ''}"
    parts = [f"{files(changed)} {'would be reformatted' if check else 'reformatted'}"] if changed else []
    parts += [f"{files(same)} {'would be left' if check else 'left'} unchanged"] if same else []
    parts += [f"{files(failed)} failed"] if failed else []
    return ", ".join(parts) + "."


def cmd_from_torch(args) -> int:
    from .fromtorch import FromTorchError, from_torch, guess_inputs, load_target, parse_kwargs

    try:
        kwargs = parse_kwargs(args.args)
        module = load_target(args.target, kwargs)
        inputs = args.input
        if inputs is None:
            inputs = guess_inputs(module)
            if inputs is None:
                raise UsageError('no layer of TARGET fixes the size of forward\'s input: give it, as a model '
                                 'declares it: --input "x: [B, 3, 224, 224]"')
            print(f"from-torch: no --input given; taking {inputs}, from the first layer", file=sys.stderr)
        problems = []
        text = from_torch(module, inputs, strict=args.strict, name=args.name, problems=problems)
    except FromTorchError as err:
        for p in err.problems:
            print(p.render("error"), file=sys.stderr)
        return 1
    for p in problems:
        print(p.render("warning"), file=sys.stderr)
    if args.output:
        _write(args.output, text)
    else:
        sys.stdout.write(text)
    todos = sum(p.placeholder for p in problems)
    if todos:
        print(f"from-torch: {todos} TODO placeholder{'s' if todos > 1 else ''} in the spec: modelspec check "
              "refuses it until they are written as the spec language can", file=sys.stderr)
        return 1
    return 0


def cmd_ir(args) -> int:
    from .pipeline import parse_source as parse_spec

    print(parse_spec(_source(args.file)).model_dump_json(indent=2))
    return 0


def cmd_schema(args) -> int:
    import json

    from .ir import SpecFile

    print(json.dumps(SpecFile.model_json_schema(), indent=2))
    return 0


def cmd_lsp(args) -> int:
    from .lsp import serve  # needs pygls: without it, main says how to install the [lsp] extra

    return serve()


def cmd_serve(args) -> int:
    if args.export is not None:
        return _export_site(args)
    if len(args.files) > 1:
        raise UsageError("serve edits one file; to show several, use --export DIR")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be from 0 to 65535, not {args.port}")
    file = args.files[0] if args.files else None
    if file is not None:
        _editable(file)
    from .serve import bind, create_app, is_loopback, run, url_of  # needs starlette and uvicorn: [serve]

    try:
        sock = bind(args.host, args.port)
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {why}"
                         + ("; choose another port with --port N (0 picks a free one)"
                            if exc.errno == errno.EADDRINUSE else "")) from None
    url = url_of(sock)
    what = f"editing {file}" if file is not None else "the bundled specs"
    print(f"modelspec playground, {what}: {url}  (Ctrl+C stops it)", flush=True)
    if not is_loopback(args.host):
        print(f"note: listening on {args.host}: whoever can reach this machine can use the page"
              + (" and save the file" if file is not None else ""), file=sys.stderr)
    if args.open:
        import webbrowser

        if not webbrowser.open(url):
            print(f"note: no web browser could be opened here; open {url}", file=sys.stderr)
    run(create_app(file, limits=_limits(args), policy=WarningPolicy.parse(args.warn), host=args.host), sock)
    return 0


def _editable(file: str) -> None:
    """`serve FILE`: a .nnspec file the page can load and save, or a new one in a folder that exists."""
    from .pipeline import read_spec

    if file == "-" or os.path.isdir(file):
        raise UsageError(f"serve edits a .nnspec file, and {file!r} is not one")
    if os.path.exists(file):
        read_spec(Path(file))  # readable, UTF-8, within the size limit: else its error, as every command says it
    elif not os.path.isdir(os.path.dirname(os.path.abspath(file))):
        raise UsageError(f"cannot create {file}: its folder does not exist")


def _export_site(args) -> int:
    """`serve --export DIR`: the read-only pages of the specs named, or of every bundled spec."""
    from .examples import examples
    from .pipeline import read_spec
    from .playground import export_site

    if args.files:
        if args.files.count("-") > 1:
            raise UsageError("- (stdin) can be read once; name it once")
        specs, taken = [], set()
        for path in args.files:
            text, read = read_spec(_source(path))
            name = "stdin" if path == "-" else Path(path).stem
            if name in taken:  # a.nnspec of two folders: the second page is named by its folder too
                name = Path(path).with_suffix("").as_posix().strip("./")
            taken.add(name)
            specs.append((name, text, read))
    else:
        specs = [(name, found.read_text(encoding="utf-8"), None) for name, found in examples().items()]
    if os.path.exists(args.export) and not os.path.isdir(args.export):
        raise UsageError(f"--export names a folder, and {args.export} is a file")
    try:
        done = export_site(args.export, specs, limits=_limits(args), policy=WarningPolicy.parse(args.warn))
    except OSError as exc:
        raise UsageError(f"cannot write to {args.export}: {exc.strerror or exc}") from None
    pages = len(done.pages) - 1
    print(f"wrote {pages} page{'s' if pages != 1 else ''} and an index to {Path(args.export) / 'index.html'}",
          file=sys.stderr)
    files = {name: path or name for name, _, path in specs}
    for name, found in done.errors.items():  # its page shows them; the exit code says there were some
        for d in found:
            print(f"{d['path'] or files[name]}:{d['line']}:{d['column']}: {d['code']} {d['message']}",
                  file=sys.stderr)
    return 1 if done.errors else 0


def cmd_examples(args) -> int:
    import shutil

    from .errors import suggest
    from .examples import SUFFIX, WIDTH, examples, listing

    found = examples()
    if args.name is None:
        print(listing(found, shutil.get_terminal_size((WIDTH, 24)).columns))
        return 0
    name = args.name.removesuffix(SUFFIX)
    if name not in found:
        raise UsageError(f"no example {args.name!r}; {suggest(name, found, 'examples', '`modelspec examples`')}")
    sys.stdout.write(found[name].read_text(encoding="utf-8"))
    return 0


def cmd_export(args) -> int:
    from .exporting import OutputError, WeightsError, export
    from .pipeline import elaborate_source, read_spec

    text, path = read_spec(_source(args.file))
    graph = elaborate_source(text, path, model=args.model, limits=_limits(args)).graph
    if _warned(args, graph.warnings):
        return 1
    try:
        done = export(graph, args.output, format=args.format, weights=args.weights, seed=args.seed,
                      force=args.force, limits=_limits(args), on_warnings=lambda found: None)  # shown above
    except (OutputError, WeightsError) as exc:
        raise UsageError(str(exc)) from None
    except SpecError as exc:  # torch.export's refusal, shown at its line
        raise exc.locate(graph.path, text) from None
    for note in done.notes:
        print(f"note: {note}", file=sys.stderr)
    weights = f"the weights of {args.weights}" if args.weights else f"random weights, seed {args.seed}"
    print(f"wrote {done.path} ({done.format}; {done.describe()}; {weights})", file=sys.stderr)
    return 0


def cmd_train(args) -> int:
    for what, v in (("--epochs", args.epochs), ("--batch-size", args.batch_size), ("--nproc", args.nproc)):
        if v is not None and v < 1:
            raise UsageError(f"{what} must be at least 1")
    if args.device is not None:
        import re

        from .trainspec import DEVICES

        if not re.fullmatch(DEVICES, args.device):
            raise UsageError(f"unknown device {args.device!r}: say auto, cpu, cuda, cuda:1 or mps")
        if args.device.startswith("cuda") or args.device == "mps":
            _device(_torch(), args.device)  # there on this machine
    try:  # the folder the checkpoints go to, made now: a file in its place is the caller's mistake
        os.makedirs(args.out, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot write to --out {args.out}: {exc.strerror or exc}") from None
    settings = {}
    for item in args.set:
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            raise UsageError(f"--set takes NAME=VALUE, not {item!r}")
        settings[name.strip()] = value.strip()
    if args.nproc is not None and args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        if args.file == "-":
            raise UsageError("--nproc starts a process for each share of the work, and they cannot all read "
                             "stdin: name the spec's file")
        from .trainer import launch
        from .pipeline import load_graph

        graph = load_graph(args.file, model=args.model, limits=_limits(args))  # errors before any process starts
        batch = args.batch_size or (graph.train.batch_size if graph.train else 1)
        if graph.train is not None and batch % args.nproc:
            raise UsageError(f"batch_size {batch} does not split evenly over {args.nproc} "
                             f"processes; choose a batch size divisible by {args.nproc} (--batch-size)")
        argv = args._argv if args._argv is not None else sys.argv[1:]
        return launch(_without_nproc(argv), args.nproc)
    from .trainer import train

    echo = (lambda line: print(line, file=sys.stderr, flush=True)) if args.json else None
    def warned(found):  # every process stops on a warning that is an error; the first says why
        if _warned(args, found, show=int(os.environ.get("RANK", "0")) == 0):
            raise SystemExit(1)

    result = train(_source(args.file), model=args.model, epochs=args.epochs, device=args.device, seed=args.seed,
                   batch_size=args.batch_size, out=args.out, resume=args.resume,
                   progress=False if args.no_progress else None, settings=settings, limits=_limits(args), echo=echo,
                   on_warnings=warned)
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    if args.json:
        print(result.to_json(), flush=True)
    else:
        _show_learned(result.model)
        print(f"saved the weights to {result.weights}", file=sys.stderr)
    return 0


SHOWN_PARAMS = 16  # a model this small has its learned values printed after training, as the tutorials do


def _show_learned(model) -> None:
    """The values a small model learned (linear regression's weight and bias), one line per parameter."""
    named = list(model.named_parameters())
    if not named or sum(p.numel() for _, p in named) > SHOWN_PARAMS:
        return
    for name, p in named:
        values = p.detach().cpu().flatten().tolist()
        shown = ", ".join(f"{v:.4f}" for v in values)
        print(f"learned {name} {list(p.shape)}: {shown}", file=sys.stderr)


def _without_nproc(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--nproc":
            skip = True
            continue
        if a.startswith("--nproc="):
            continue
        out.append(a)
    return out


def _torch():
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
        import torch
    return torch


COMMANDS = {"check": cmd_check, "codegen": cmd_codegen, "summary": cmd_summary, "run": cmd_run, "fmt": cmd_fmt,
            "ir": cmd_ir, "schema": cmd_schema, "graph": cmd_graph, "train": cmd_train,
            "examples": cmd_examples, "export": cmd_export, "lsp": cmd_lsp, "serve": cmd_serve,
            "from-torch": cmd_from_torch}
