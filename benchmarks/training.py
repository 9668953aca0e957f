"""Training overhead: `modelspec.train` against the printed training script's own loop.

`modelspec train` runs the printed script's functions (``setup``, ``train_loop``) and adds a checkpoint
after every epoch, a line of metrics and, on a terminal, a progress bar. Measured here, in interleaved
rounds: an epoch of the bare loop (``setup`` once, then ``train_loop``, as the script's ``main`` does) is the
baseline; the candidates are `modelspec.train` without files (``out=None``) and with its checkpoint written
after every epoch (``out=DIR``), both for the same number of epochs, each timed whole and divided per epoch.
"""

from __future__ import annotations

import os
import tempfile

from .measure import Ratio, fmt_time, interleave, now

# a small CNN on data computed in the spec: an epoch of about 0.15 s on one CPU thread
SPEC = """
model Net(x: [B, 1, 16, 16]) {
    net = Sequential(Conv2d(1, 8, 3), ReLU(), MaxPool2d(2), Flatten(), Linear(_, 32), ReLU(), Linear(32, 4))
}

train Net {
    data {
        x = torch.randn(4096, 1, 16, 16)
        y = torch.randint(0, 4, (4096,))
    }
    target y: Long[B]
    loss = CrossEntropyLoss()
    optimizer = SGD(lr=0.05, momentum=0.9)
    epochs = EPOCHS
    batch_size = 64
    device = "cpu"
}
"""


def measure(epochs: int = 3, rounds: int = 5, log=print) -> list[tuple[str, str, Ratio]]:
    from modelspec import elaborate_spec, train
    from modelspec.build import load_source
    from modelspec.trainscript import training_script

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "net.nnspec")
        with open(path, "w", encoding="utf-8") as f:
            f.write(SPEC.replace("EPOCHS", str(epochs)))
        graph = elaborate_spec(path)
        script = load_source(training_script(graph), graph)

        def bare():
            t0 = now()
            model, loader, _, loss_fn, optimizer, _ = script.setup("cpu")
            for _ in range(epochs):
                script.train_loop(loader, model, loss_fn, optimizer, "cpu")
            return now() - t0

        def no_files():
            t0 = now()
            train(path, progress=False, echo=lambda line: None)
            return now() - t0

        def checkpoints():
            t0 = now()
            train(path, out=os.path.join(tmp, "out"), progress=False, echo=lambda line: None)
            return now() - t0

        log(f"training overhead: {rounds} rounds of {epochs} epochs")
        s = interleave({"script": bare, "train": no_files, "train --out": checkpoints}, rounds)
        per_epoch = fmt_time(s.median("script") / epochs)
        return [("modelspec.train, no files", per_epoch, s.ratio("train", "script")),
                ("modelspec.train, a checkpoint every epoch", per_epoch, s.ratio("train --out", "script"))]


def render(rows, markdown: bool = False) -> str:
    head = ("candidate", "the script's epoch", "time / the script's loop")
    lines = [list(head)] + [[name, base, str(r)] for name, base, r in rows]
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return "\n".join(out + ["| " + " | ".join(r) + " |" for r in lines[1:]])
    widths = [max(len(r[i]) for r in lines) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in lines)
