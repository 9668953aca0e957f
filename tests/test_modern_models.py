"""Today's models: a Vision Transformer, a VAE and nanoGPT.

What `test_specs.py` checks for every spec (golden code, forward shapes, the printed code's round
trip, parameter counts) holds here too; these add what each model must do beyond that. The ViT spec
is held against a hand-written reference with timm's names; nanoGPT is a reference for a GPT spec
to come (`reference_models.GPT_SMALL` is its configuration).
"""

import pytest

from conftest import ROOT
from modelspec import compile_spec, elaborate_spec, example_inputs, generate_code, summarize
from reference_models import GPT_SMALL, GPT, GPTConfig, VisionTransformer, gpt_small

VIT = ROOT / "specs" / "vit.nnspec"
VAE = ROOT / "specs" / "vae.nnspec"

# specs/vit.nnspec's consts; the reference is built from the same numbers
IMAGE, PATCH, DIM, HEADS, DEPTH, CLASSES, MLP_RATIO = 32, 4, 64, 4, 3, 10, 4


def _exec_printed(code: str, name: str):
    namespace: dict = {}
    exec(compile(code, f"<printed {name}>", "exec"), namespace)
    return namespace[name]


# ---------------------------------------------------------------- ViT


def test_vit_expands_the_class_token_in_front():
    code = generate_code(VIT)
    assert "cls = self.cls_token.expand(x.shape[0], -1, -1)  # [B, 1, 64]" in code
    assert "x = torch.cat([cls, x], dim=1) + self.pos_embed  # [B, 65, 64]" in code
    assert "F.scaled_dot_product_attention(q, k, v)" in code


def test_vit_gives_one_row_of_logits_per_image(torch):
    graph = elaborate_spec(VIT)
    assert [str(o) for o in graph.outputs] == ["[B, 10]"]
    model = compile_spec(VIT, seed=0).eval()
    for batch in (1, 5):
        (x,) = example_inputs(VIT, batch=batch)
        with torch.no_grad():
            assert tuple(model(x).shape) == (batch, CLASSES)


def test_vit_parameter_count(torch):
    tokens = (IMAGE // PATCH) ** 2 + 1  # the patches and the class token
    hidden = DIM * MLP_RATIO
    per_block = (
        2 * 2 * DIM  # norm1, norm2: weight and bias
        + DIM * 3 * DIM + 3 * DIM  # attn.qkv
        + DIM * DIM + DIM  # attn.proj
        + DIM * hidden + hidden  # mlp.fc1
        + hidden * DIM + DIM  # mlp.fc2
    )
    expected = (
        3 * PATCH * PATCH * DIM + DIM  # patch_embed.proj
        + DIM  # cls_token
        + tokens * DIM  # pos_embed
        + DEPTH * per_block
        + 2 * DIM  # norm
        + DIM * CLASSES + CLASSES  # head
    )
    model = compile_spec(VIT)
    assert sum(p.numel() for p in model.parameters()) == expected
    assert elaborate_spec(VIT).total_params == expected
    assert summarize(VIT).total_params == expected


def test_vit_runs_like_the_reference_with_its_weights(torch):
    model = compile_spec(VIT, seed=0).eval()
    torch.manual_seed(1)
    reference = VisionTransformer(IMAGE, PATCH, DIM, DEPTH, HEADS, CLASSES).eval()
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    assert ours == theirs
    for key in ("cls_token", "pos_embed", "patch_embed.proj.weight", "blocks.2.attn.qkv.weight", "head.bias"):
        assert key in ours
    (x,) = example_inputs(VIT, batch=3)
    with torch.no_grad():
        assert not torch.allclose(model(x), reference(x), atol=1e-3)  # other weights: the load must matter
        reference.load_state_dict(model.state_dict(), strict=True)
        assert torch.allclose(model(x), reference(x), atol=1e-5)


def test_vit_output_depends_on_the_class_token(torch):
    model = compile_spec(VIT, seed=0).eval()
    (x,) = example_inputs(VIT, batch=2)
    with torch.no_grad():
        before = model(x)
        model.cls_token.add_(1.0)
        assert not torch.allclose(model(x), before)


# ---------------------------------------------------------------- VAE


def test_vae_outputs_have_the_shapes_summary_gives(torch):
    summary = summarize(VAE, batch=4).to_dict()
    assert [o["shape"] for o in summary["outputs"]] == ["[B, 1, 28, 28]", "[B, 20]", "[B, 20]"]
    model = compile_spec(VAE, seed=0)
    (x,) = example_inputs(VAE, batch=4)
    recon, mu, logvar = model(x)
    assert [list(t.shape) for t in (recon, mu, logvar)] == [o["sizes"] for o in summary["outputs"]]
    assert 0 <= recon.min() and recon.max() <= 1  # Sigmoid: pixel probabilities


def test_vae_draws_its_noise_from_torchs_generator(torch):
    code = generate_code(VAE)
    assert "std = torch.exp(0.5 * logvar)  # [B, 20]" in code
    assert "z = mu + torch.randn_like(std) * std  # [B, 20]" in code
    model = compile_spec(VAE, seed=0)
    (x,) = example_inputs(VAE, batch=3)
    with torch.no_grad():
        torch.manual_seed(42)
        first = model(x)
        torch.manual_seed(42)
        again = model(x)
        torch.manual_seed(43)
        other = model(x)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], other[0])  # another seed, other noise: the sample is really drawn
    assert torch.equal(first[1], other[1]) and torch.equal(first[2], other[2])  # mu, logvar: no noise


def test_vae_decodes_the_mean_in_eval(torch):
    model = compile_spec(VAE, seed=0).eval()
    (x,) = example_inputs(VAE, batch=3)
    with torch.no_grad():
        recon, mu, logvar = model(x)
        assert torch.equal(recon, model.decoder(mu))
        assert torch.equal(model(x)[0], recon)  # no draw: eval is deterministic
    assert "if self.training:" in generate_code(VAE)


def test_vae_reparameterises(torch):
    model = compile_spec(VAE, seed=0)
    (x,) = example_inputs(VAE, batch=3)
    with torch.no_grad():
        torch.manual_seed(7)
        recon, mu, logvar = model(x)
        torch.manual_seed(7)
        eps = torch.randn_like(mu)  # the draw forward made
        assert torch.equal(recon, model.decoder(mu + eps * torch.exp(0.5 * logvar)))


def test_vae_printed_code_draws_the_same_noise(torch):
    model = compile_spec(VAE, seed=0)
    printed = _exec_printed(generate_code(VAE), "VAE")()
    printed.load_state_dict(model.state_dict(), strict=True)
    (x,) = example_inputs(VAE, batch=2)
    with torch.no_grad():
        torch.manual_seed(5)
        a = model(x)
        torch.manual_seed(5)
        b = printed(x)
    assert all(torch.equal(p, q) for p, q in zip(a, b))


# ---------------------------------------------------------------- nanoGPT


def gpt_param_count(c: GPTConfig) -> int:
    """nanoGPT's parameters by hand; the tied lm_head.weight is transformer.wte.weight, counted once."""
    linear = lambda n_in, n_out: n_in * n_out + (n_out if c.bias else 0)
    norm = c.n_embd + (c.n_embd if c.bias else 0)
    block = (
        norm  # ln_1
        + linear(c.n_embd, 3 * c.n_embd)  # attn.c_attn
        + linear(c.n_embd, c.n_embd)  # attn.c_proj
        + norm  # ln_2
        + linear(c.n_embd, 4 * c.n_embd)  # mlp.c_fc
        + linear(4 * c.n_embd, c.n_embd)  # mlp.c_proj
    )
    return (
        c.vocab_size * c.n_embd  # wte, which is also lm_head (no bias)
        + c.block_size * c.n_embd  # wpe
        + c.n_layer * block
        + norm  # ln_f
    )


def test_gpt_small_is_the_configuration_in_the_report():
    assert GPT_SMALL == GPTConfig(block_size=64, vocab_size=256, n_layer=2, n_head=4, n_embd=64,
                                  dropout=0.0, bias=False)
    assert gpt_param_count(GPT_SMALL) == 119_104


@pytest.mark.parametrize("bias", [False, True])
def test_gpt_parameter_count_follows_the_config(bias, torch):
    config = GPTConfig(**{**GPT_SMALL.__dict__, "bias": bias})
    model = GPT(config)
    assert sum(p.numel() for p in model.parameters()) == gpt_param_count(config)
    assert model.get_num_params() == gpt_param_count(config) - config.block_size * config.n_embd


def test_gpt_ties_the_embedding_to_the_head(torch):
    model = gpt_small()
    assert model.transformer.wte.weight is model.lm_head.weight
    keys = list(model.state_dict())
    assert "transformer.wte.weight" in keys and "lm_head.weight" in keys  # the state_dict holds both names
    assert "lm_head.weight" not in dict(model.named_parameters())  # .parameters() holds the tensor once
    assert "transformer.h.0.attn.c_attn.weight" in keys and "transformer.h.0.attn.c_attn.bias" not in keys
    assert "transformer.ln_f.bias" not in keys  # bias=False: nanoGPT's LayerNorm has none either


def test_gpt_gives_causal_logits_at_every_position(torch):
    torch.manual_seed(0)
    model = gpt_small().eval()
    c = GPT_SMALL
    idx = torch.randint(0, c.vocab_size, (2, c.block_size))
    changed = idx.clone()
    changed[:, -1] = (idx[:, -1] + 1) % c.vocab_size
    with torch.no_grad():
        logits, other = model(idx), model(changed)
    assert tuple(logits.shape) == (2, c.block_size, c.vocab_size)
    assert torch.equal(logits[:, :-1], other[:, :-1])  # no position sees a later token
    assert not torch.allclose(logits[:, -1], other[:, -1])


GPT_SPEC = ROOT / "specs" / "gpt.nnspec"


def test_gpt_spec_is_nanogpt_key_for_key(torch):
    """specs/gpt.nnspec against the nanoGPT reference: the same state_dict keys in the same order, the tied
    lm_head included; with the spec's weights the reference gives the same logits; the same parameter count."""
    graph = elaborate_spec(GPT_SPEC)
    spec_model = compile_spec(GPT_SPEC, seed=0).eval()
    reference = gpt_small().eval()
    assert list(spec_model.state_dict()) == list(reference.state_dict())
    reference.load_state_dict(spec_model.state_dict(), strict=True)
    assert reference.transformer.wte.weight is reference.lm_head.weight
    assert spec_model.transformer.wte.weight is spec_model.lm_head.weight
    assert graph.root.total_params == sum(p.numel() for p in spec_model.parameters()) == gpt_param_count(GPT_SMALL)
    torch.manual_seed(0)
    for t in (GPT_SMALL.block_size, 7):  # the positions follow the sequence's length, up to block_size
        idx = torch.randint(0, GPT_SMALL.vocab_size, (2, t))
        with torch.no_grad():
            assert torch.allclose(spec_model(idx), reference(idx), atol=1e-6, rtol=0)


def test_gpt_spec_consts_are_the_reference_config():
    consts = dict((name, value) for name, value in elaborate_spec(GPT_SPEC).consts)
    code = {name: int(v.value) if hasattr(v, "value") and isinstance(v.value, int) else v for name, v in consts.items()}
    for name in ("block_size", "vocab_size", "n_layer", "n_head", "n_embd"):
        assert code[name.upper()] == getattr(GPT_SMALL, name)


# ---------------------------------------------------------------- DenseNet, mixture of experts, YOLOv8
def test_densenet_layers_see_every_feature_map_before_them(torch):
    spec = ROOT / "specs" / "densenet.nnspec"
    model = compile_spec(spec, seed=0).eval()
    block = model.features.denseblock1
    # 24 channels in; each layer adds GROWTH = 12: the k-th layer reads 24 + 12 k
    assert [layer.norm1.num_features for layer in block.layers.values()] == [24 + 12 * k for k in range(4)]
    assert list(block.layers) == [f"denselayer{k + 1}" for k in range(4)]
    (x,) = example_inputs(spec, batch=2)
    with torch.no_grad():
        assert tuple(block(model.features.conv0(x)).shape) == (2, 24 + 4 * 12, 32, 32)
    code = generate_code(spec)
    assert "for name, layer in self.layers.items():" in code and "features.append(new_features)" in code


def test_mixture_of_experts_mixes_by_the_gate(torch):
    spec = ROOT / "specs" / "moe.nnspec"
    model = compile_spec(spec, seed=0).eval()
    (x,) = example_inputs(spec, batch=2)
    with torch.no_grad():
        weights = torch.softmax(model.gate(x), dim=-1)
        expected = sum(weights[..., i:i + 1] * expert(x) for i, expert in enumerate(model.experts))
        assert torch.allclose(model(x), expected, atol=1e-6)
    assert "[expert(x) for expert in self.experts]" in generate_code(spec)


def test_yolov8_c2f_joins_every_bottleneck_output(torch):
    spec = ROOT / "specs" / "yolov8_c2f.nnspec"
    model = compile_spec(spec, seed=0).eval()
    c2f = model.c2f2  # C2f(64, n=2): hidden c = 32, cv2 takes (2 + n) * c channels
    assert c2f.cv1.conv.out_channels == 64 and c2f.cv2.conv.in_channels == (2 + 2) * 32 and len(c2f.m) == 2
    assert model.sppf.cv2.conv.in_channels == 4 * (64 // 2)  # SPPF joins its input and three poolings
    (x,) = example_inputs(spec, batch=2)
    with torch.no_grad():
        h = model.stage2(model.c2f1(model.stage1(model.stem(x))))
        a, b = c2f.cv1(h).chunk(2, 1)
        y = [a, b]
        for m in c2f.m:
            y.append(m(y[-1]))
        assert torch.equal(c2f(h), c2f.cv2(torch.cat(y, 1)))
