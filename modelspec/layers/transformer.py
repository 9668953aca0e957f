"""MultiheadAttention, the Transformer encoder/decoder layers, their stacks and Transformer itself.

Sequences are ``[L, N, E]`` (``[N, L, E]`` with batch_first) or unbatched
``[L, E]``, as torch takes them; batch_first never applies to an unbatched
input, nor to MultiheadAttention's weights, which are always batch first
(``[N, L, S]``, or ``[N, num_heads, L, S]`` unaveraged).

The masks of the encoder and decoder layers, their stacks and Transformer are
tensors given to forward by keyword, which a spec cannot pass (forward's
keyword arguments are compile-time values): they run unmasked, and a decoder
attends to every position of tgt.
"""

from __future__ import annotations

from ..shapes import Val, shape_str
from .base import (
    BOOL,
    FLOAT,
    MODULE,
    POSITIVE,
    PROB,
    Arg,
    ArgProblem,
    ArgType,
    Bound,
    Layer,
    ShapeProblem,
    choice,
    dim,
    optional,
)


# ---------------------------------------------------------------- shared helpers
def _layout(batch_first: bool, e="E") -> str:
    return f"[N, L, {e}]" if batch_first else f"[L, N, {e}]"


def _need_seq(x, what: str, batch_first: bool):
    # torch's _mha_shape_check: batched 3-d or unbatched 2-d, nothing else
    if len(x) not in (2, 3):
        raise ShapeProblem(
            f"expects {what} to be a batched 3-d {_layout(batch_first)} or an unbatched 2-d [L, E], "
            f"got {len(x)}-d {shape_str(x)}"
        )


def _seq_batch(x, batch_first: bool):
    """(sequence length, batch) of a sequence; batch None when unbatched."""
    if len(x) == 2:
        return x[0], None
    return (x[1], x[0]) if batch_first else (x[0], x[1])


def _infer_last(what: str):
    def infer(x, *others):
        _need_seq(x, what, False)
        return x[-1]

    return infer


def _check_divides(embed: str, heads: str):
    def check(a):
        e, h = getattr(a, embed), getattr(a, heads)
        if e % h:
            raise ArgProblem(f"{heads}={h} must divide {embed}={e} (each head takes {embed} // {heads} features)")

    return check


def _plain(v):
    return v.value if isinstance(v, Val) else v


def attention_macs(batch, L, S, E, kdim, vdim, S_attended=None):
    """Projections of q, k, v and the output, plus the QK^T and AV matmuls.

    S_attended counts the keys attended to (S plus add_bias_kv and add_zero_attn).
    """
    S_attended = S if S_attended is None else S_attended
    proj = L * E * E + S * E * kdim + S * E * vdim + L * E * E
    return batch * (proj + 2 * L * S_attended * E)


def attention_params(E, kdim, vdim, bias, add_bias_kv=False):
    # in_proj (one 3E x E matrix, or q/k/v matrices when kdim/vdim differ: the same count)
    # and out_proj; bias_k and bias_v are [1, 1, E] each
    return E * (E + kdim + vdim) + (3 * E if bias else 0) + E * E + (E if bias else 0) + (2 * E if add_bias_kv else 0)


def _linear_params(i, o, bias):
    return i * o + (o if bias else 0)


def _norm_params(e, bias):
    return e + (e if bias else 0)


# ---------------------------------------------------------------- MultiheadAttention
MHA_CALL = {"need_weights": True, "average_attn_weights": True, "is_causal": False}


def _call(a, name):
    """A forward argument: as bound, else forward's default."""
    return a.values[name] if name in a.values else MHA_CALL[name]


def mha_rule(a, q, k, v):
    bf = a.batch_first
    _need_seq(q, "query", bf)
    if len(k) != len(q) or len(v) != len(q):
        kind = "batched (3-d)" if len(q) == 3 else "unbatched (2-d)"
        raise ShapeProblem(
            f"expects key and value of the same rank as its {kind} query {shape_str(q)}, "
            f"got key {shape_str(k)} and value {shape_str(v)}"
        )
    E = a.embed_dim
    kdim = a.kdim if a.kdim is not None else E
    vdim = a.vdim if a.vdim is not None else E
    if dim(q, -1) != E:
        raise ShapeProblem(f"expects query {_layout(bf, E)} with embed_dim={E}, got {shape_str(q)}")
    for x, what, want, arg in ((k, "key", kdim, "kdim"), (v, "value", vdim, "vdim")):
        if dim(x, -1) != want:
            spelled = f"{arg}={want}" if getattr(a, arg) is not None else f"embed_dim={E} (no {arg} given)"
            raise ShapeProblem(f"expects {what} with last dim {want} from {spelled}, got {shape_str(x)}")
    L, N = _seq_batch(q, bf)
    S, Nk = _seq_batch(k, bf)
    Sv, Nv = _seq_batch(v, bf)
    if Nk is not None and (_plain(Nk) != _plain(N) or _plain(Nv) != _plain(N)):
        raise ShapeProblem(
            f"expects query, key and value with the same batch size, got {shape_str(q)}, {shape_str(k)}, {shape_str(v)}"
        )
    if _plain(S) != _plain(Sv):
        raise ShapeProblem(f"expects key and value of the same sequence length, got {shape_str(k)} and {shape_str(v)}")
    if _call(a, "is_causal"):
        # torch's multi_head_attention_forward: "Need attn_mask if specifying the is_causal hint"
        raise ShapeProblem("is_causal=True needs an attn_mask, which a spec cannot pass")
    out = (*q[:-1], a.val("embed_dim"))
    if not _call(a, "need_weights"):
        return [out, None]
    extra = int(a.add_bias_kv) + int(a.add_zero_attn)  # each appends one key to attend to
    S_att = S if extra == 0 else S + extra
    lead = () if N is None else (N,)
    heads = () if _call(a, "average_attn_weights") else (a.val("num_heads"),)
    return [out, (*lead, *heads, L, S_att)]


def mha_params(a):
    E = a.embed_dim
    kdim = a.kdim if a.kdim is not None else E
    vdim = a.vdim if a.vdim is not None else E
    return attention_params(E, kdim, vdim, a.bias, a.add_bias_kv)


def mha_macs(a, out, q, k, v):
    E = a.embed_dim
    L, N = _seq_batch(q, a.batch_first)
    S, _ = _seq_batch(k, a.batch_first)
    L, S = _plain(L), _plain(S)
    kdim = a.kdim if a.kdim is not None else E
    vdim = a.vdim if a.vdim is not None else E
    extra = int(a.add_bias_kv) + int(a.add_zero_attn)
    return attention_macs(1 if N is None else _plain(N), L, S, E, kdim, vdim, S + extra)


# ---------------------------------------------------------------- encoder and decoder layers
def _layer_args() -> tuple[Arg, ...]:
    return (
        Arg("d_model", POSITIVE, infer=_infer_last("src")),
        Arg("nhead", POSITIVE),
        Arg("dim_feedforward", POSITIVE, 2048),
        Arg("dropout", PROB, 0.1),
        # torch's default is the function F.relu; a spec names it, as torch also accepts
        Arg("activation", choice("relu", "gelu"), "relu"),
        Arg("layer_norm_eps", FLOAT, 1e-05),
        Arg("batch_first", BOOL, False),
        Arg("norm_first", BOOL, False),
        Arg("bias", BOOL, True),
    )


def _need_d_model(a, x, what: str, hint: str | None = None):
    _need_seq(x, what, a.batch_first)
    if dim(x, -1) != a.d_model:
        raise ShapeProblem(f"expects {what} {_layout(a.batch_first, a.d_model)} with d_model={a.d_model}, "
                           f"got {shape_str(x)}", hint=hint)


def encoder_layer_rule(a, src):
    _need_d_model(a, src, "src")
    return tuple(src)


def decoder_layer_rule(a, tgt, memory):
    _need_d_model(a, tgt, "tgt")
    _need_d_model(a, memory, "memory")
    # memory is the key and value of the cross-attention: same rank and batch as tgt
    if len(memory) != len(tgt) or (len(tgt) == 3 and _plain(_seq_batch(tgt, a.batch_first)[1])
                                   != _plain(_seq_batch(memory, a.batch_first)[1])):
        raise ShapeProblem(
            f"expects memory with the same rank and batch size as tgt, got tgt {shape_str(tgt)} and memory "
            f"{shape_str(memory)}"
        )
    return tuple(tgt)


def _ff_params(a):
    return _linear_params(a.d_model, a.dim_feedforward, a.bias) + _linear_params(a.dim_feedforward, a.d_model, a.bias)


def encoder_layer_params(a):
    E = a.d_model
    return attention_params(E, E, E, a.bias) + _ff_params(a) + 2 * _norm_params(E, a.bias)


def decoder_layer_params(a):
    E = a.d_model
    return 2 * attention_params(E, E, E, a.bias) + _ff_params(a) + 3 * _norm_params(E, a.bias)


def encoder_layer_macs(a, out, src):
    L, N = _seq_batch(src, a.batch_first)
    L, N = _plain(L), 1 if N is None else _plain(N)
    E = a.d_model
    return attention_macs(N, L, L, E, E, E) + N * L * 2 * E * a.dim_feedforward


def decoder_layer_macs(a, out, tgt, memory):
    T, N = _seq_batch(tgt, a.batch_first)
    S, _ = _seq_batch(memory, a.batch_first)
    T, S, N = _plain(T), _plain(S), 1 if N is None else _plain(N)
    E = a.d_model
    return attention_macs(N, T, T, E, E, E) + attention_macs(N, T, S, E, E, E) + N * T * 2 * E * a.dim_feedforward


# ---------------------------------------------------------------- TransformerEncoder, TransformerDecoder
# a stack of num_layers copies of the module given as its first argument: encoder_layer or decoder_layer
STACKED = {"TransformerEncoder": ("encoder_layer", "TransformerEncoderLayer"),
           "TransformerDecoder": ("decoder_layer", "TransformerDecoderLayer")}


def _stack_check(stack: str):
    arg, type_name = STACKED[stack]

    def check(a):
        if getattr(a, arg).type_name != type_name:
            raise ArgProblem(f"{arg} must be a {type_name}(...), not a {getattr(a, arg).type_name}")

    return check


def _inner(a, arg: str = "encoder_layer") -> Bound:
    """The stacked layer's own bound arguments."""
    return Bound(dict(getattr(a, arg).args))


def _stack_rule(stack: str, layer_rule, first: str):
    arg = STACKED[stack][0]

    def rule(a, x, *others):
        inner = _inner(a, arg)
        _need_seq(x, first, inner.batch_first)
        if dim(x, -1) != inner.d_model:
            raise ShapeProblem(
                f"expects {first} {_layout(inner.batch_first, inner.d_model)} for its {arg}'s "
                f"d_model={inner.d_model}, got {shape_str(x)}"
            )
        return layer_rule(inner, x, *others)

    return rule


def _none_only(what: str) -> ArgType:
    # torch's default None is supported; a module in its place is not yet
    def check(v):
        if v is not None:
            raise ArgProblem(f"can only be None here ({what} is not supported), not {v!r}")
        return v

    return ArgType("None", check)


# ---------------------------------------------------------------- Transformer
def transformer_rule(a, src, tgt):
    for x, what in ((src, "src"), (tgt, "tgt")):
        _need_seq(x, what, a.batch_first)  # before the hint reads its last dim
        _need_d_model(a, x, what, hint=f"give Transformer(d_model={dim(x, -1)}, ...): it is not inferred, and "
                                       f"left out it is torch's 512")
    # torch's own check, before its encoder runs: the decoder attends to the encoded src as its memory
    if len(src) != len(tgt) or (len(src) == 3 and _plain(_seq_batch(src, a.batch_first)[1])
                                != _plain(_seq_batch(tgt, a.batch_first)[1])):
        raise ShapeProblem(f"expects src and tgt of the same rank and batch size, got src {shape_str(src)} and tgt "
                           f"{shape_str(tgt)}", hint=f"both {_layout(a.batch_first, a.d_model)}, or both unbatched")
    return tuple(tgt)


def transformer_params(a):
    norms = 2 * _norm_params(a.d_model, a.bias)  # the encoder's and the decoder's final LayerNorm
    return a.num_encoder_layers * encoder_layer_params(a) + a.num_decoder_layers * decoder_layer_params(a) + norms


def transformer_macs(a, out, src, tgt):
    return (a.num_encoder_layers * encoder_layer_macs(a, src, src)  # each encoder layer gives its input's shape
            + a.num_decoder_layers * decoder_layer_macs(a, out, tgt, src))


LAYERS = [
    Layer(
        "MultiheadAttention",
        (
            Arg("embed_dim", POSITIVE, infer=_infer_last("query")),
            Arg("num_heads", POSITIVE),
            Arg("dropout", PROB, 0.0),
            Arg("bias", BOOL, True),
            Arg("add_bias_kv", BOOL, False),
            Arg("add_zero_attn", BOOL, False),
            Arg("kdim", optional(POSITIVE), None),
            Arg("vdim", optional(POSITIVE), None),
            Arg("batch_first", BOOL, False),
        ),
        mha_rule,
        "attention of query over key/value in num_heads heads: returns [attn_output, attn_weights or None]",
        params=mha_params,
        macs=mha_macs,
        ranks=(2, 3),
        n_inputs=3,
        check=_check_divides("embed_dim", "num_heads"),
        family="transformer", layout="strided",
        call_args=tuple(Arg(k, BOOL, v, kw_only=True) for k, v in MHA_CALL.items()),
    ),
    Layer(
        "TransformerEncoderLayer",
        _layer_args(),
        encoder_layer_rule,
        "self-attention and a feed-forward block, each with a residual and LayerNorm",
        params=encoder_layer_params,
        macs=encoder_layer_macs,
        ranks=(2, 3),
        check=_check_divides("d_model", "nhead"),
        family="transformer", layout="strided",
    ),
    Layer(
        "TransformerEncoder",
        (
            Arg("encoder_layer", MODULE),
            Arg("num_layers", POSITIVE),
            Arg("norm", _none_only("a final norm"), None),
            Arg("enable_nested_tensor", BOOL, True),
            Arg("mask_check", BOOL, True),
        ),
        _stack_rule("TransformerEncoder", encoder_layer_rule, "src"),
        "num_layers copies of encoder_layer, one after another",
        params=lambda a: a.num_layers * a.encoder_layer.params,
        macs=lambda a, out, src: a.num_layers * encoder_layer_macs(_inner(a), out, src),
        ranks=(2, 3),
        check=_stack_check("TransformerEncoder"),
        family="transformer", layout="strided",
    ),
    Layer(
        "TransformerDecoderLayer",
        tuple(
            Arg("d_model", POSITIVE, infer=_infer_last("tgt")) if x.name == "d_model" else x for x in _layer_args()
        ),
        decoder_layer_rule,
        "self-attention, attention over memory and a feed-forward block, each with a residual and LayerNorm",
        params=decoder_layer_params,
        macs=decoder_layer_macs,
        ranks=(2, 3),
        n_inputs=2,
        check=_check_divides("d_model", "nhead"),
        family="transformer", layout="strided",
    ),
    Layer(
        "TransformerDecoder",
        (
            Arg("decoder_layer", MODULE),
            Arg("num_layers", POSITIVE),
            Arg("norm", _none_only("a final norm"), None),
        ),
        _stack_rule("TransformerDecoder", decoder_layer_rule, "tgt"),
        "num_layers copies of decoder_layer, one after another, each attending to memory",
        params=lambda a: a.num_layers * a.decoder_layer.params,
        macs=lambda a, out, tgt, memory: a.num_layers * decoder_layer_macs(_inner(a, "decoder_layer"), out, tgt,
                                                                           memory),
        ranks=(2, 3),
        n_inputs=2,
        check=_stack_check("TransformerDecoder"),
        family="transformer", layout="strided",
    ),
    Layer(
        "Transformer",
        (
            # torch's defaults stand where they are left out, so d_model is not inferred: give it, or 512 it is
            Arg("d_model", POSITIVE, 512),
            Arg("nhead", POSITIVE, 8),
            Arg("num_encoder_layers", POSITIVE, 6),
            Arg("num_decoder_layers", POSITIVE, 6),
            *(x for x in _layer_args() if x.name in ("dim_feedforward", "dropout", "activation")),
            Arg("custom_encoder", _none_only("a custom encoder"), None),
            Arg("custom_decoder", _none_only("a custom decoder"), None),
            *(x for x in _layer_args() if x.name in ("layer_norm_eps", "batch_first", "norm_first", "bias")),
        ),
        transformer_rule,
        "an encoder of src, then a decoder of tgt attending to it, each ending in a LayerNorm: tgt's shape out",
        params=transformer_params,
        macs=transformer_macs,
        ranks=(2, 3),
        n_inputs=2,
        check=_check_divides("d_model", "nhead"),
        family="transformer", layout="strided",
    ),
]
