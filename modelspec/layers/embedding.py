"""Embedding: integer indices -> vectors."""

from __future__ import annotations

from .base import BOOL, FLOAT, INT, POSITIVE, Arg, ArgProblem, Layer, float_out, optional


def _check(a):
    p = a.padding_idx
    if p is not None and not -a.num_embeddings <= p < a.num_embeddings:
        raise ArgProblem(f"padding_idx={p} must be within num_embeddings={a.num_embeddings}")


LAYERS = [
    Layer(
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
        params=lambda a: a.num_embeddings * a.embedding_dim,
        weights=lambda a: {"weight": (a.num_embeddings, a.embedding_dim)},
        check=_check,
        family="embedding",
        layout="new",
        dtypes=("long",),  # indices
        out_dtype=float_out,
        index_bound=lambda a: a.num_embeddings,  # example inputs must index inside the table
    ),
]
