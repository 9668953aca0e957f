"""RNN, LSTM, GRU: recurrent layers with tuple outputs; RNNCell, LSTMCell, GRUCell: one step of each.

torch declares their constructors as ``__init__(*args, **kwargs)`` over
RNNBase; the arguments here are the documented ones (the ``@overload`` each
class carries), in torch's order. Outputs follow torch exactly:

* RNN, GRU: ``[output, h_n]``; LSTM: ``[output, [h_n, c_n]]``;
* ``output`` is ``[T, B, D * H_out]`` (``[B, T, ...]`` with batch_first, ``[T, ...]``
  unbatched), D = 2 when bidirectional, H_out = proj_size or hidden_size;
* ``h_n`` is ``[D * num_layers, B, H_out]`` whatever batch_first says (torch
  never transposes the hidden state), ``[D * num_layers, H_out]`` unbatched;
  ``c_n`` is the same with hidden_size, since the projection only shrinks h.

A cell takes ``[N, input_size]`` (or unbatched ``[input_size]``) and, for RNNCell and GRUCell, an optional
hidden state ``[N, hidden_size]`` as its second input; it returns the next h, and LSTMCell ``[h, c]``. LSTMCell's
state is a tuple ``(h, c)``, and a spec passes modules tensors alone: it starts from zeros (no second input).
"""

from __future__ import annotations

from ..shapes import Val, shape_str
from .base import (
    BOOL,
    NONNEG,
    POSITIVE,
    PROB,
    Arg,
    ArgProblem,
    Layer,
    ShapeProblem,
    choice,
    dim,
)

GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}  # gate blocks stacked in weight_ih / weight_hh


def _layout(a) -> str:
    return "[B, T, F]" if a.batch_first else "[T, B, F]"


def _need_input(a, x):
    # torch takes [T, B, F] (or [B, T, F] with batch_first) or unbatched [T, F]
    if len(x) not in (2, 3):
        raise ShapeProblem(
            f"expects a 3-d input {_layout(a)} or an unbatched 2-d [T, F], got {len(x)}-d {shape_str(x)}"
        )


def _infer_input_size(x, hx=None):
    if len(x) not in (2, 3):
        raise ShapeProblem(f"expects a 3-d input [T, B, F] or an unbatched 2-d [T, F], got {len(x)}-d {shape_str(x)}")
    return x[-1]


def _directions(a) -> int:
    return 2 if a.bidirectional else 1


def _h_out(a) -> Val:
    """The size of h: proj_size when the LSTM projects, else hidden_size (spelled as given)."""
    return a.val("proj_size") if getattr(a, "proj_size", 0) else a.val("hidden_size")


def _times(n: int, v: Val) -> Val:
    # keep the spelling when nothing multiplies it (hidden_size, not 1 * hidden_size)
    return v if n == 1 else v * n


def _batch(a, x):
    """The batch dim of a batched input, or None for an unbatched one."""
    if len(x) == 2:
        return None
    return x[0] if a.batch_first else x[1]


def _state(a, x, size: Val) -> tuple:
    """h_n (or c_n) with last dim ``size``: [D * num_layers, B, size], B dropped unbatched."""
    layers = _times(_directions(a), a.val("num_layers"))
    b = _batch(a, x)
    return (layers, size) if b is None else (layers, b, size)


def _check_features(a, x):
    # bind already compares an explicit input_size with the input; this keeps
    # the rule honest on its own
    if dim(x, -1) != a.input_size:
        want = "[T, " if len(x) == 2 else _layout(a)[:-2]  # "[B, T, " or "[T, B, "
        raise ShapeProblem(f"expects input {want}{a.input_size}] with input_size={a.input_size}, got {shape_str(x)}")


def _check_hx(a, x, hx):
    want = _state(a, x, a.val("hidden_size"))
    if len(hx) != len(want) or any(dim(hx, i) != (w.value if isinstance(w, Val) else w) for i, w in enumerate(want)):
        kind = "unbatched 2-d" if len(x) == 2 else "batched 3-d"
        raise ShapeProblem(
            f"expects hx {shape_str(want)} (num_layers * directions, batch, hidden_size) for its {kind} input "
            f"{shape_str(x)}, got {shape_str(hx)}"
        )


def _output(a, x) -> tuple:
    feat = _times(_directions(a), _h_out(a))
    return (*x[:-1], feat)


def rnn_rule(a, x, hx=None):
    """RNN and GRU: [output, h_n]."""
    _need_input(a, x)
    _check_features(a, x)
    if hx is not None:
        _check_hx(a, x, hx)
    return [_output(a, x), _state(a, x, a.val("hidden_size"))]


def lstm_rule(a, x):
    """LSTM: [output, [h_n, c_n]]; with proj_size, h is projected but c is not."""
    _need_input(a, x)
    _check_features(a, x)
    return [_output(a, x), [_state(a, x, _h_out(a)), _state(a, x, a.val("hidden_size"))]]


def _layer_inputs(a, layer: int) -> int:
    # the first layer reads the input; later ones the previous layer's output, both directions concatenated
    h_out = a.proj_size if getattr(a, "proj_size", 0) else a.hidden_size
    return a.input_size if layer == 0 else _directions(a) * h_out


def recurrent_params(kind: str):
    def params(a):
        g = GATES[kind] * a.hidden_size
        proj = getattr(a, "proj_size", 0)
        h_out = proj or a.hidden_size
        total = 0
        # layer 0 and layer 1 stand for all: layers past the first are alike (closed form: num_layers may be huge)
        for layer, count in ((0, 1), (1, a.num_layers - 1)):
            per_direction = g * _layer_inputs(a, layer) + g * h_out  # weight_ih, weight_hh
            if a.bias:
                per_direction += 2 * g  # bias_ih and bias_hh, both kept although they add up
            if proj:
                per_direction += proj * a.hidden_size  # weight_hr
            total += count * _directions(a) * per_direction
        return total

    return params


def recurrent_macs(kind: str):
    """Gate matmuls of every time step, layer and direction (plus the LSTM projection)."""

    def macs(a, out, x, hx=None):
        steps = dim(x, 0) * dim(x, 1) if len(x) == 3 else dim(x, 0)  # T * B: the layout does not matter
        g = GATES[kind] * a.hidden_size
        proj = getattr(a, "proj_size", 0)
        h_out = proj or a.hidden_size
        per_step = 0
        for layer, count in ((0, 1), (1, a.num_layers - 1)):  # closed form, as in params
            per_step += count * _directions(a) * (g * (_layer_inputs(a, layer) + h_out) + proj * a.hidden_size)
        return steps * per_step

    return macs


def _lstm_check(a):
    if a.proj_size >= a.hidden_size:
        raise ArgProblem(f"proj_size={a.proj_size} must be smaller than hidden_size={a.hidden_size}")


def _common(kind: str) -> tuple[Arg, ...]:
    head = (
        Arg("input_size", POSITIVE, infer=_infer_input_size),
        Arg("hidden_size", POSITIVE),
        Arg("num_layers", POSITIVE, 1),
    )
    if kind == "RNN":
        head += (Arg("nonlinearity", choice("tanh", "relu"), "tanh"),)
    tail = (
        Arg("bias", BOOL, True),
        Arg("batch_first", BOOL, False),
        Arg("dropout", PROB, 0.0),  # between layers only, so torch merely warns when num_layers=1
        Arg("bidirectional", BOOL, False),
    )
    if kind == "LSTM":
        tail += (Arg("proj_size", NONNEG, 0),)
    return head + tail


# ---------------------------------------------------------------- cells
def _infer_cell_size(x, hx=None):
    return x[-1]  # of any rank: the rule refuses a sequence, saying what to do


def _need_cell_input(x):
    if len(x) not in (1, 2):
        raise ShapeProblem(f"expects a 2-d input [N, input_size] or an unbatched 1-d [input_size], got {len(x)}-d "
                           f"{shape_str(x)}", hint="a cell takes one step: loop over the sequence, or use the "
                                                   "sequence layer (RNN, LSTM, GRU)")


def cell_rule(a, x, hx=None):
    """h' of the input's batch: [N, hidden_size], or [hidden_size] unbatched."""
    _need_cell_input(x)
    if dim(x, -1) != a.input_size:
        raise ShapeProblem(f"expects input [..., {a.input_size}] with input_size={a.input_size}, got {shape_str(x)}")
    h = (*x[:-1], a.val("hidden_size"))
    if hx is not None and (len(hx) != len(x) or any(dim(hx, i) != dim(h, i) for i in range(len(h)))):
        raise ShapeProblem(f"expects a hidden state {shape_str(h)} (the input's batch, hidden_size) for its input "
                           f"{shape_str(x)}, got {shape_str(hx)}")
    return h


def lstm_cell_rule(a, x):
    """[h', c'], both of hidden_size."""
    h = cell_rule(a, x)
    return [h, h]


def cell_params(kind: str):
    def params(a):
        g = GATES[kind] * a.hidden_size
        return g * (a.input_size + a.hidden_size) + (2 * g if a.bias else 0)  # bias_ih and bias_hh

    return params


def cell_macs(kind: str):
    def macs(a, out, x, hx=None):
        batch = dim(x, 0) if len(x) == 2 else 1
        return batch * GATES[kind] * a.hidden_size * (a.input_size + a.hidden_size)  # a zero hx is multiplied too

    return macs


def _cell(kind: str, rule, doc: str, n_inputs) -> Layer:
    args = [Arg("input_size", POSITIVE, infer=_infer_cell_size), Arg("hidden_size", POSITIVE), Arg("bias", BOOL, True)]
    if kind == "RNN":
        args.append(Arg("nonlinearity", choice("tanh", "relu"), "tanh"))
    return Layer(f"{kind}Cell", tuple(args), rule, doc, params=cell_params(kind), macs=cell_macs(kind), ranks=(1, 2),
                 n_inputs=n_inputs, family="recurrent")


LAYERS = [
    Layer(
        "RNN",
        _common("RNN"),
        rnn_rule,
        "Elman RNN over a sequence: returns [output, h_n]",
        params=recurrent_params("RNN"),
        macs=recurrent_macs("RNN"),
        ranks=(2, 3),
        n_inputs=(1, 2),
        family="recurrent", layout="strided",
    ),
    Layer(
        "LSTM",
        _common("LSTM"),
        lstm_rule,
        "LSTM over a sequence: returns [output, [h_n, c_n]]",
        params=recurrent_params("LSTM"),
        macs=recurrent_macs("LSTM"),
        ranks=(2, 3),
        n_inputs=1,
        check=_lstm_check,
        family="recurrent", layout="strided",
    ),
    Layer(
        "GRU",
        _common("GRU"),
        rnn_rule,
        "GRU over a sequence: returns [output, h_n]",
        params=recurrent_params("GRU"),
        macs=recurrent_macs("GRU"),
        ranks=(2, 3),
        n_inputs=(1, 2),
        family="recurrent", layout="strided",
    ),
    _cell("RNN", cell_rule, "one step of an Elman RNN: returns h'", (1, 2)),
    _cell("LSTM", lstm_cell_rule, "one step of an LSTM from a zero state: returns [h', c']", 1),
    _cell("GRU", cell_rule, "one step of a GRU: returns h'", (1, 2)),
]
