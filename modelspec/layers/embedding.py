"""Embedding and EmbeddingBag: integer indices -> vectors.

EmbeddingBag reduces each bag of indices to one vector: the rows of a 2-d input ``[B, N]``, or the runs of a 1-d
input that its second input, ``offsets`` (``[B]``, where each bag starts), marks. A spec checks the offsets' shape,
not their values, which torch wants rising from 0 and at most the input's length: they cannot be a model input
(example inputs are drawn at random), but an ``arange`` in forward will do. Forward's third tensor,
per_sample_weights, is not supported.
"""

from __future__ import annotations

from ..shapes import shape_str
from .base import BOOL, FLOAT, INT, POSITIVE, Arg, ArgProblem, Layer, ShapeProblem, choice, float_out, optional


def _check(a):
    p = a.padding_idx
    if p is not None and not -a.num_embeddings <= p < a.num_embeddings:
        raise ArgProblem(f"padding_idx={p} must be within num_embeddings={a.num_embeddings}")


def _bag_check(a):
    _check(a)
    # torch's F.embedding_bag: a max's gradient goes to one index of each bag, neither sparse nor scaled
    for flag, on in (("sparse", a.sparse), ("scale_grad_by_freq", a.scale_grad_by_freq)):
        if a.mode == "max" and on:
            raise ArgProblem(f"mode='max' does not support {flag}=True: torch's max bag has no such gradient")


def bag_rule(a, x, offsets=None):
    if len(x) == 2:
        if offsets is not None:
            raise ShapeProblem(f"takes no offsets with a 2-d input {shape_str(x)}, whose rows are the bags",
                               hint="pass the 2-d input alone, or flatten it and give offsets")
        return (x[0], a.val("embedding_dim"))
    if len(x) != 1:
        raise ShapeProblem(f"expects a 2-d input [B, N] (a bag per row) or a 1-d [N] with offsets, got {len(x)}-d "
                           f"{shape_str(x)}")
    if offsets is None:
        raise ShapeProblem(f"needs offsets with a 1-d input {shape_str(x)}: where each bag starts",
                           hint="pass them as its second input, bag(x, offsets), or give a 2-d input [B, N]")
    if len(offsets) != 1:
        raise ShapeProblem(f"expects 1-d offsets [B], got {len(offsets)}-d {shape_str(offsets)}")
    if not a.include_last_offset:
        return (offsets[0], a.val("embedding_dim"))
    if offsets[0].value == 1:
        raise ShapeProblem(f"has include_last_offset=True, so its one offset {shape_str(offsets)} ends a bag that "
                           f"none starts: no bag is left", hint="give the start of each bag and then the end")
    return (offsets[0] - 1, a.val("embedding_dim"))  # the last offset ends the last bag


def _table(a) -> dict:
    return {"weight": (a.num_embeddings, a.embedding_dim)}


def _lookup(name: str, args: tuple[Arg, ...], rule, doc: str, **kw) -> Layer:
    return Layer(
        name,
        args,
        rule,
        doc,
        params=lambda a: a.num_embeddings * a.embedding_dim,
        weights=_table,
        family="embedding",
        layout="new",
        dtypes=("long",),  # indices (and offsets)
        out_dtype=float_out,
        index_bound=lambda a: a.num_embeddings,  # example inputs must index inside the table
        **kw,
    )


LAYERS = [
    _lookup(
        "Embedding",
        (
            Arg("num_embeddings", POSITIVE),
            Arg("embedding_dim", POSITIVE),
            Arg("padding_idx", optional(INT), None),
            Arg("max_norm", optional(FLOAT), None),
            Arg("norm_type", FLOAT, 2.0),
            Arg("scale_grad_by_freq", BOOL, False),
            Arg("sparse", BOOL, False),
        ),
        lambda a, x: (*x, a.val("embedding_dim")),
        "looks up a learned vector for each index",
        check=_check,
    ),
    _lookup(
        "EmbeddingBag",
        (
            Arg("num_embeddings", POSITIVE),
            Arg("embedding_dim", POSITIVE),
            Arg("max_norm", optional(FLOAT), None),
            Arg("norm_type", FLOAT, 2.0),
            Arg("scale_grad_by_freq", BOOL, False),
            Arg("mode", choice("sum", "mean", "max"), "mean"),
            Arg("sparse", BOOL, False),
            Arg("include_last_offset", BOOL, False),
            Arg("padding_idx", optional(INT), None),
        ),
        bag_rule,
        "the sum, mean or max of the vectors of each bag of indices: [B, N] -> [B, embedding_dim]",
        check=_bag_check,
        n_inputs=(1, 2),
    ),
]
