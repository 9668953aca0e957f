"""Hand-written PyTorch baselines for the bundled specs, and an interpreter-style forward.

Each reference class is what a person writes by hand (the tutorials' code,
torchvision's ResNet); its module names follow the spec, so the compiled
module's ``state_dict`` loads into it with ``strict=True`` and both run on
identical weights.

`Interpreted` is the other way to run a described model: a loop over a layer
table with saved outputs, as YAML-driven model builders do (YOLOv5's
``BaseModel._forward_once``: each entry says which earlier output it reads,
``-1`` for the previous one, and outputs that a later entry reads are kept in
a list). It runs the very layer objects of the reference, so the weights are
the same; only the dispatch differs.
"""

from __future__ import annotations

import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
from reference_models import resnet18  # noqa: E402, F401  torchvision's ResNet-18, name for name


# ---------------------------------------------------------------- hand-written modules
class NeuralNetwork(nn.Module):
    """The FashionMNIST classifier of the PyTorch tutorials (specs/mnist_mlp.nnspec)."""

    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(28 * 28, 512),
            nn.ReLU(),
            nn.Linear(512, 512),
            nn.ReLU(),
            nn.Linear(512, 10),  # logits: the tutorial's last ReLU, before CrossEntropyLoss, is gone (as in the spec)
        )

    def forward(self, x):
        x = self.flatten(x)
        return self.linear_relu_stack(x)


class CNN(nn.Module):
    """The tutorials' CNN (specs/cnn.nnspec)."""

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Conv2d(1, 20, 5), nn.ReLU(), nn.Conv2d(20, 64, 5), nn.ReLU())
        self.fc1 = nn.Linear(64 * 20 * 20, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = self.layers(x)
        x = x.view(x.size(0), -1)
        x = F.relu(self.fc1(x))
        x = self.fc2(x)
        return F.softmax(x, dim=1)


class LSTMClassifier(nn.Module):
    """Token ids -> embeddings -> 2-layer LSTM -> last step -> classes (specs/lstm_classifier.nnspec)."""

    def __init__(self, vocab=10000, embed=128, hidden=256, classes=4):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed, padding_idx=0)
        self.lstm = nn.LSTM(embed, hidden, num_layers=2, batch_first=True, dropout=0.1)
        self.classifier = nn.Linear(hidden, classes)

    def forward(self, tokens):
        out, _ = self.lstm(self.embedding(tokens))
        return self.classifier(out[:, -1, :])


class TransformerClassifier(nn.Module):
    """Embeddings + learned positions, a 2-layer encoder, mean, LayerNorm, classes
    (specs/transformer_classifier.nnspec)."""

    def __init__(self, vocab=5000, d_model=128, seq_len=64, nhead=4, ff=256, layers=2, classes=3):
        super().__init__()
        self.positions = nn.Parameter(torch.randn(seq_len, d_model) * 0.02)
        self.embedding = nn.Embedding(vocab, d_model)
        layer = nn.TransformerEncoderLayer(d_model, nhead, ff, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.classifier = nn.Linear(d_model, classes)

    def forward(self, tokens):
        x = self.embedding(tokens) + self.positions
        x = self.encoder(x)
        return self.classifier(self.norm(x.mean(dim=1)))


class DeepMLP(nn.Module):
    """A deep stack as one writes it by hand: nn.Sequential of Linear(16, 16) and ReLU (benchmarks/specgen.py)."""

    def __init__(self, layers=100, width=16):
        super().__init__()
        self.layers = nn.Sequential(*[nn.Linear(width, width) if i % 2 == 0 else nn.ReLU() for i in range(layers)])

    def forward(self, x):
        return self.layers(x)


# ---------------------------------------------------------------- the interpreter
class Add(nn.Module):
    def forward(self, xs):
        return xs[0] + xs[1]


class Fn(nn.Module):
    """A function as a layer-table entry (view, flatten, softmax, an indexing)."""

    def __init__(self, fn, name: str):
        super().__init__()
        self.fn, self.name = fn, name

    def forward(self, x):
        return self.fn(x)

    def extra_repr(self):
        return self.name


class Interpreted(nn.Module):
    """Runs a layer table ``[(from, layer), ...]`` the way YAML-driven builders do."""

    def __init__(self, table: list[tuple[int | list[int], nn.Module]]):
        super().__init__()
        self.layers = nn.ModuleList(m for _, m in table)
        self.froms = [f for f, _ in table]
        self.save = {j for f, _ in table for j in ([f] if isinstance(f, int) else f) if j != -1}

    def forward(self, x):
        y = []
        for i, (m, f) in enumerate(zip(self.layers, self.froms)):
            if f != -1:
                x = y[f] if isinstance(f, int) else [x if j == -1 else y[j] for j in f]
            x = m(x)
            y.append(x if i in self.save else None)
        return x


def _view_flat(x):
    return x.view(x.size(0), -1)


def mlp_table(m: NeuralNetwork):
    return [(-1, m.flatten)] + [(-1, layer) for layer in m.linear_relu_stack]


def cnn_table(m: CNN):
    return ([(-1, layer) for layer in m.layers]
            + [(-1, Fn(_view_flat, "view")), (-1, m.fc1), (-1, Fn(F.relu, "relu")), (-1, m.fc2),
               (-1, Fn(lambda x: F.softmax(x, dim=1), "softmax"))])


def resnet_table(m):
    t = [(-1, m.conv1), (-1, m.bn1), (-1, m.relu), (-1, m.maxpool)]
    for stage in (m.layer1, m.layer2, m.layer3, m.layer4):
        for b in stage:
            start = len(t) - 1  # the block's input
            t += [(-1, b.conv1), (-1, b.bn1), (-1, b.relu), (-1, b.conv2), (-1, b.bn2)]
            main = len(t) - 1
            if b.downsample is not None:
                t += [(start, b.downsample[0]), (-1, b.downsample[1])]
                t += [([main, -1], Add())]
            else:
                t += [([main, start], Add())]
            t += [(-1, b.relu)]
    t += [(-1, m.avgpool), (-1, Fn(lambda x: torch.flatten(x, 1), "flatten")), (-1, m.fc)]
    return t


def lstm_table(m: LSTMClassifier):
    return [(-1, m.embedding), (-1, m.lstm), (-1, Fn(lambda r: r[0], "output")),
            (-1, Fn(lambda x: x[:, -1, :], "last")), (-1, m.classifier)]


def transformer_table(m: TransformerClassifier):
    class Positions(nn.Module):  # a table entry that holds the learned positions
        def __init__(self, p):
            super().__init__()
            self.p = p

        def forward(self, x):
            return x + self.p

    return [(-1, m.embedding), (-1, Positions(m.positions)), (-1, m.encoder),
            (-1, Fn(lambda x: x.mean(dim=1), "mean")), (-1, m.norm), (-1, m.classifier)]


def deep_mlp_table(m: DeepMLP):
    return [(-1, layer) for layer in m.layers]
