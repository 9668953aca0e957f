"""Python modules that `modelspec from-torch` is held against (tests/test_from_torch.py): a torchvision-style
ResNet whose blocks differ in numbers and in a child, and a module for each thing a spec cannot say."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    """torchvision's BasicBlock, with the shortcut only where the shape changes."""

    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.stride = stride
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x):
        identity = x
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return F.relu(out + identity)


class TinyResNet(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.layers = nn.ModuleList([Block(16, 16), Block(16, 32, stride=2), Block(32, 32), Block(32, 64, 2)])
        self.heads = nn.ModuleDict({"fc": nn.Linear(64, num_classes)})

    def forward(self, x):
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x)
        x = x.mean(dim=(2, 3))
        return self.heads["fc"](x)


class Branchy(nn.Module):
    """Control flow on a tensor's values."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        if x.sum() > 0:
            return self.fc(x)
        return x


class Fourier(nn.Module):
    """An op without a spec form."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        y = torch.fft.fft(x).real
        return self.fc(y)


class Params(nn.Module):
    """A torch module outside the catalog."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.extra = nn.ParameterList([nn.Parameter(torch.zeros(4))])

    def forward(self, x):
        return self.fc(x)


class Stats(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.bn = nn.BatchNorm1d(4)

    def forward(self, x):
        y = self.fc(x)
        self.bn(y)
        return y


class Pair(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x, y):
        return self.fc(x) - y


class Order(nn.Module):
    def __init__(self):
        super().__init__()
        self.d1 = nn.Dropout(0.5)
        self.d2 = nn.Dropout(0.5)
        self.pair = Pair()

    def forward(self, x):
        return self.pair(y=self.d1(x), x=self.d2(x))


class Modes(nn.Module):
    def __init__(self, s):
        super().__init__()
        self.s = s
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x) * (self.s if self.training else 1.0)


class Two(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = Modes(2.0)
        self.b = Modes(3.0)
        self.drop = 0.3

    def forward(self, x):
        return F.dropout(self.a(x) + self.b(x), self.drop, self.training)


class TiedList(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 4)])
        self.layers[1].weight = self.layers[0].weight

    def forward(self, x):
        return self.layers[1](self.layers[0](x))


class Aux(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        y = self.fc(x)
        if self.training:
            return y, y * 2
        return y

class Keyworded(nn.Sequential):
    """A child named with a word of the spec, as torchvision names EfficientNet's: written in quotes."""

    def __init__(self):
        super().__init__()
        self.block = nn.Sequential(nn.Linear(4, 4), nn.ReLU())


class KeywordCalled(nn.Module):
    """The same child, called by name in forward: a spec's forward cannot say its name."""

    def __init__(self):
        super().__init__()
        self.block = nn.Linear(4, 4)

    def forward(self, x):
        return self.block(x)


class Builtin(nn.Module):
    """A child named as a Python builtin, which the spec's printed code would hide."""

    def __init__(self):
        super().__init__()
        self.filter = nn.Linear(4, 4)

    def forward(self, x):
        return self.filter(x)


class Plain(nn.Module):
    """A plain tensor attribute holding values: in no state_dict."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.scale = torch.arange(4.0) + 1

    def forward(self, x):
        return self.fc(x) * self.scale


def tiny_resnet(num_classes=10):
    return TinyResNet(num_classes)


def broken():
    """A factory that fails: its error is the user's, said at their line."""
    return nn.Linear(4, int("four"))


class Reshaper(nn.Module):
    def forward(self, x, b):
        return x.view(b, -1, 4)


class PassBatch(nn.Module):
    """A size given to a block as a number: the spec's blocks take tensors alone."""

    def __init__(self):
        super().__init__()
        self.r = Reshaper()

    def forward(self, x):
        return self.r(x, x.size(0))


class Normed(nn.Module):
    """A LayerNorm over three dims: `_` would infer the last alone."""

    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm([2, 4, 4], elementwise_affine=False)
        self.bn = nn.BatchNorm2d(2)

    def forward(self, x):
        return self.norm(self.bn(x))


class Counting(nn.Module):
    """A buffer forward changes as it runs."""

    def __init__(self):
        super().__init__()
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x):
        self.calls += 1
        return x * self.calls


class Causal(nn.Module):
    """A mask made in forward from a size, nanoGPT's way without flash attention."""

    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(8, 24)

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.qkv(x).split(8, dim=2)
        mask = torch.tril(torch.ones(T, T))
        att = (q @ k.transpose(-2, -1)).masked_fill(mask == 0, float("-inf"))
        return att.softmax(dim=-1) @ v


class Named(nn.Module):
    """A dict returned: a spec's forward returns tensors."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return {"logits": self.fc(x)}


class Proj(nn.Module):
    def __init__(self, n, bias):
        super().__init__()
        self.fc = nn.Linear(n, n, bias=bias)

    def forward(self, x):
        return self.fc(x)


class Flags(nn.Module):
    """Instances that differ in a flag: one block, the flag its parameter."""

    def __init__(self):
        super().__init__()
        self.a = Proj(4, True)
        self.b = Proj(4, False)

    def forward(self, x):
        return self.b(self.a(x))


class KeywordParam(nn.Module):
    """A parameter named with a word of the spec."""

    def __init__(self):
        super().__init__()
        self.buffer = nn.Parameter(torch.ones(4))

    def forward(self, x):
        return x * self.buffer


class CifarBlock(nn.Module):
    """pytorch-cifar's BasicBlock: an empty Sequential where the shortcut is the identity."""

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False))

    def forward(self, x):
        out = self.conv(x)
        out += self.shortcut(x)
        return F.relu(out)


class Cifar(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(CifarBlock(3, 3), CifarBlock(3, 8, 2), CifarBlock(8, 8))

    def forward(self, x):
        return self.layers(x)
