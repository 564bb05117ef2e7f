"""Tests of eiginit.models.transformer: gradients, the replica contract, initializations."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from eiginit import (
    TransformerModel,
    associative_recall,
    fit,
    framework_attention_defaults,
    init_transformer,
)

SMALL = {"vocab": 7, "length": 5, "d_model": 8, "heads": 2, "layers": 2, "d_ff": 12, "classes": 3}


def _perturbed(model, seed=0, replicas=2):
    """Float64 parameters with LayerNorm gains and biases away from 1 and 0."""
    params = init_transformer(
        model, "pytorch", [np.random.default_rng(seed + r) for r in range(replicas)],
        dtype=np.float64,
    )  # fmt: skip
    rng = np.random.default_rng(seed + 100)
    return [p + 0.1 * rng.standard_normal(p.shape) for p in params]


def _batch(model, replicas=2, batch=4, seed=5):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, model.vocab, (replicas, batch, model.length)).astype(np.float64)
    return x, rng.integers(0, model.classes, (replicas, batch))


@pytest.mark.parametrize(("causal", "activation"), [(False, "relu"), (True, "gelu")])
def test_gradients_match_central_differences(causal, activation):
    model = TransformerModel(**SMALL, causal=causal, activation=activation)
    params = _perturbed(model)
    x, y = _batch(model)
    _, grads = model.loss_and_gradients(params, x, y)
    h = 1e-6
    for name, p, g in zip(model.parameter_names, params, grads, strict=True):
        flat = p.reshape(-1)
        idx = np.random.default_rng(1).choice(flat.size, size=min(flat.size, 12), replace=False)
        numeric = np.empty(idx.size)
        for j, i in enumerate(idx):
            old = flat[i]
            flat[i] = old + h
            up = model.loss_and_gradients(params, x, y)[0].sum()
            flat[i] = old - h
            down = model.loss_and_gradients(params, x, y)[0].sum()
            flat[i] = old
            numeric[j] = (up - down) / (2 * h)
        # central differences err by O(h^2) ~ 1e-12 plus rounding ~ 1e-16 / h ~ 1e-10
        assert np.allclose(g.reshape(-1)[idx], numeric, rtol=1e-6, atol=1e-8), name


def _torch_replica(model, params, r, torch):
    """The same network from torch.nn modules, replica r's weights copied in."""
    nn = torch.nn
    d = model.d_model
    t = {n: torch.tensor(p[r]) for n, p in zip(model.parameter_names, params, strict=True)}

    def ln(g, b):
        m = nn.LayerNorm(d, eps=1e-5, dtype=torch.float64)
        m.weight.data, m.bias.data = g.clone(), b.clone()
        return m

    def linear(w, b):
        m = nn.Linear(w.shape[1], w.shape[0], dtype=torch.float64)
        m.weight.data, m.bias.data = w.clone(), b.clone()
        return m

    modules = {"embed": nn.Embedding(model.vocab, d, dtype=torch.float64)}
    modules["embed"].weight.data = t["embed"].clone()
    modules["position"] = nn.Parameter(t["position"].clone())
    blocks = []
    for layer in range(model.layers):
        mha = nn.MultiheadAttention(d, model.heads, batch_first=True, dtype=torch.float64)
        mha.in_proj_weight.data = t[f"w_qkv.{layer}"].clone()
        mha.in_proj_bias.data = t[f"b_qkv.{layer}"].clone()
        mha.out_proj.weight.data = t[f"w_o.{layer}"].clone()
        mha.out_proj.bias.data = t[f"b_o.{layer}"].clone()
        act = nn.ReLU() if model.activation == "relu" else nn.GELU(approximate="tanh")
        blocks.append(
            {
                "ln1": ln(t[f"ln1_g.{layer}"], t[f"ln1_b.{layer}"]),
                "mha": mha,
                "ln2": ln(t[f"ln2_g.{layer}"], t[f"ln2_b.{layer}"]),
                "mlp": nn.Sequential(
                    linear(t[f"w_1.{layer}"], t[f"b_1.{layer}"]),
                    act,
                    linear(t[f"w_2.{layer}"], t[f"b_2.{layer}"]),
                ),
            }
        )
    head = nn.Sequential(ln(t["lnf_g"], t["lnf_b"]), linear(t["w_out"], t["b_out"]))
    ordered = [modules["embed"].weight, modules["position"]]
    for b in blocks:
        ordered += [b["ln1"].weight, b["ln1"].bias, b["mha"].in_proj_weight,
                    b["mha"].in_proj_bias, b["mha"].out_proj.weight, b["mha"].out_proj.bias,
                    b["ln2"].weight, b["ln2"].bias, b["mlp"][0].weight, b["mlp"][0].bias,
                    b["mlp"][2].weight, b["mlp"][2].bias]  # fmt: skip
    ordered += [head[0].weight, head[0].bias, head[1].weight, head[1].bias]
    T = model.length
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1) if model.causal else None

    def forward(tokens):
        h = modules["embed"](tokens) + modules["position"]
        for b in blocks:
            a = b["ln1"](h)
            h = h + b["mha"](a, a, a, attn_mask=mask, need_weights=False)[0]
            h = h + b["mlp"](b["ln2"](h))
        return head(h[:, -1, :])

    return forward, ordered


@pytest.mark.parametrize(("causal", "activation"), [(False, "relu"), (True, "gelu")])
def test_loss_and_gradients_match_torch_autograd(causal, activation):
    torch = pytest.importorskip("torch")
    model = TransformerModel(**SMALL, causal=causal, activation=activation)
    params = _perturbed(model, seed=3)
    x, y = _batch(model, seed=9)
    loss, grads = model.loss_and_gradients(params, x, y)
    for r in range(2):
        forward, ordered = _torch_replica(model, params, r, torch)
        logits = forward(torch.tensor(x[r], dtype=torch.long))
        t_loss = torch.nn.functional.cross_entropy(logits, torch.tensor(y[r]))
        t_loss.backward()
        assert abs(float(t_loss.detach()) - loss[r]) < 1e-12
        for name, g, p in zip(model.parameter_names, grads, ordered, strict=True):
            np.testing.assert_allclose(g[r], p.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)
        out = model.predict([p[r : r + 1] for p in params], x[r])[0]
        np.testing.assert_allclose(out, logits.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_replicas_of_a_fit_follow_separate_runs():
    model = TransformerModel(**SMALL)
    x, y = associative_recall(96, pairs=2, keys=3, values=3, rng=np.random.default_rng(0))
    model = TransformerModel(
        vocab=12, length=3, d_model=8, heads=2, layers=2, d_ff=12, classes=3, causal=True
    )
    data = (x[:64].astype(float), y[:64], x[64:].astype(float), y[64:])
    rates, seeds = [3e-3, 1e-2, 3e-2], [11, 12, 13]
    schemes = ["pytorch", "gpt2", "small_init"]
    params = [
        np.concatenate(arrays)
        for arrays in zip(
            *[
                init_transformer(model, s, [np.random.default_rng(i)], dtype=np.float64)
                for i, s in enumerate(schemes)
            ],
            strict=True,
        )
    ]
    together = fit(model, params, data, lr=rates, seeds=seeds, epochs=3, batch_size=16)
    for r in range(3):
        alone = fit(
            model, [p[r : r + 1] for p in params], data, lr=rates[r], seeds=[seeds[r]],
            epochs=3, batch_size=16,
        )  # fmt: skip
        np.testing.assert_allclose(together.train_loss[r], alone.train_loss[0], rtol=1e-12)
        np.testing.assert_allclose(together.val_metric[r], alone.val_metric[0], rtol=1e-12)
        for a, b in zip(together.final_params, alone.final_params, strict=True):
            np.testing.assert_allclose(a[r], b[0], rtol=1e-10, atol=1e-13)
    assert not together.diverged.any()


def test_a_short_fit_learns_associative_recall():
    rng = np.random.default_rng(4)
    x, y = associative_recall(1200, pairs=3, keys=4, values=4, rng=rng)
    model = TransformerModel(vocab=20, length=4, d_model=16, heads=2, layers=1, d_ff=32, classes=4)
    params = init_transformer(model, "gpt2", [np.random.default_rng(0)])
    data = (x[:1000].astype(np.float32), y[:1000], x[1000:].astype(np.float32), y[1000:])
    result = fit(model, params, data, lr=1e-2, seeds=[0], epochs=8, batch_size=32)
    # guessing scores 1/4; a lookup by key is needed to go far above it
    assert result.best_value[0] > 0.9


@pytest.mark.parametrize("scheme", ["pytorch", "gpt2", "small_init"])
def test_initializations_have_their_stated_spread(scheme):
    model = TransformerModel(
        vocab=64, length=32, d_model=64, heads=4, layers=3, d_ff=128, classes=16
    )
    params = init_transformer(model, scheme, [np.random.default_rng(7)], dtype=np.float64)
    named = dict(zip(model.parameter_names, params, strict=True))
    d, f, L = 64, 128, 3
    if scheme == "pytorch":
        expected = {"embed": 1.0, "w_qkv.0": 2 / (4 * d), "w_o.1": 1 / (3 * d),
                    "w_1.2": 1 / (3 * d), "w_2.0": 1 / (3 * f), "b_1.0": 1 / (3 * d),
                    "b_qkv.1": 0.0, "b_o.2": 0.0}  # fmt: skip
    elif scheme == "gpt2":
        expected = {"embed": 4e-4, "position": 4e-4, "w_qkv.0": 4e-4, "w_1.1": 4e-4,
                    "w_o.2": 4e-4 / (2 * L), "w_2.0": 4e-4 / (2 * L), "b_1.0": 0.0}  # fmt: skip
    else:
        expected = {"embed": 2 / (5 * d), "w_qkv.1": 2 / (5 * d), "w_1.2": 2 / (5 * d),
                    "w_o.0": (2 / L) ** 2 / d, "w_2.2": (2 / L) ** 2 / d, "b_2.1": 0.0}  # fmt: skip
    for name, variance in expected.items():
        a = named[name]
        if variance == 0.0:
            assert not a.any(), name
            continue
        # relative standard error of a sample variance: sqrt((kurtosis - 1) / n) <= sqrt(2 / n)
        tolerance = 5 * math.sqrt(2 / a.size)
        assert abs(a.var() / variance - 1) < tolerance, (name, a.var(), variance)
    for name in ("ln1_g.0", "ln2_g.2", "lnf_g"):
        assert np.all(named[name] == 1.0)
    assert np.all(named["lnf_b"] == 0.0)


def test_initialization_uses_one_generator_per_replica():
    model = TransformerModel(**SMALL)
    both = init_transformer(model, "gpt2", [np.random.default_rng(1), np.random.default_rng(2)])
    second = init_transformer(model, "gpt2", [np.random.default_rng(2)])
    for a, b in zip(both, second, strict=True):
        np.testing.assert_array_equal(a[1], b[0])


def test_associative_recall_labels_are_the_stored_values():
    x, y = associative_recall(500, pairs=4, keys=6, values=5, rng=np.random.default_rng(2))
    stored, query = x[:, :-1], x[:, -1] - 6 * 5
    assert np.all((query >= 0) & (query < 6))
    keys_ = stored // 5
    assert np.all(np.sort(keys_, axis=1)[:, 1:] != np.sort(keys_, axis=1)[:, :-1])  # distinct
    match = keys_ == query[:, None]
    assert np.all(match.sum(axis=1) == 1)
    np.testing.assert_array_equal(stored[match] % 5, y)
    # labels uniform over the values: chi-square with 4 degrees of freedom, 99.9 % point 18.5
    counts = np.bincount(y, minlength=5)
    assert np.sum((counts - 100) ** 2 / 100) < 18.5


def test_framework_attention_defaults_match_torch():
    torch = pytest.importorskip("torch")
    d, heads = 64, 4
    stated = framework_attention_defaults("torch", d, heads)
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(d, heads)
    w = mha.in_proj_weight.detach().numpy().astype(np.float64)
    tolerance = 5 * math.sqrt(0.8 / (d * d))  # uniform entries: kurtosis 1.8
    for i, part in enumerate(("query", "key", "value")):
        assert abs(w[i * d : (i + 1) * d].var() / stated[part] - 1) < tolerance, part
    assert abs(mha.out_proj.weight.detach().numpy().var() / stated["output"] - 1) < tolerance
    assert not mha.in_proj_bias.detach().numpy().any()
    assert not mha.out_proj.bias.detach().numpy().any()
    # the encoder layer builds the same attention and nn.Linear's default MLP, Post-LN by default
    layer = torch.nn.TransformerEncoderLayer(d, heads)
    assert layer.norm_first is False
    assert layer.linear1.out_features == 2048
    bound = 1 / math.sqrt(d)
    assert float(layer.linear1.weight.detach().abs().max()) <= bound
    # the logits' variance for unit-variance inputs, over many draws of the weights
    logits = []
    for seed in range(200):
        torch.manual_seed(seed)
        wq, wk, _ = torch.nn.MultiheadAttention(d, heads).in_proj_weight.detach().double().split(d)
        x = torch.randn(2, d, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
        q, k = x @ wq.T, x @ wk.T
        dk = d // heads
        logits.append(float(q[0, :dk] @ k[1, :dk]) / math.sqrt(dk))
    measured = np.var(logits)
    # kurtosis of a logit is at most 9 (a product of Gaussians); 5 standard errors
    assert abs(measured / stated["logit"] - 1) < 5 * math.sqrt(8 / len(logits))


def test_framework_attention_defaults_match_keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")  # the tests session installs torch, not TF
    pytest.importorskip("torch")
    keras = pytest.importorskip("keras")
    d, heads = 64, 4
    stated = framework_attention_defaults("keras", d, heads)
    keras.utils.set_random_seed(0)
    layer = keras.layers.MultiHeadAttention(num_heads=heads, key_dim=d // heads)
    x = np.zeros((1, 3, d), dtype="float32")
    layer(x, x)
    tolerance = 5 * math.sqrt(0.8 / (d * d))
    found = {"/".join(w.path.split("/")[-2:]): w.value.detach().cpu().numpy()
             for w in layer.weights}  # fmt: skip
    for part, name in (("query", "query"), ("key", "key"), ("value", "value"),
                       ("output", "attention_output")):  # fmt: skip
        assert abs(found[f"{name}/kernel"].var() / stated[part] - 1) < tolerance, part
        assert not found[f"{name}/bias"].any()


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="heads"):
        TransformerModel(vocab=5, length=4, d_model=10, heads=3, layers=1, d_ff=8, classes=2)
    with pytest.raises(ValueError, match="activation"):
        TransformerModel(**{**SMALL, "activation": "tanh"})
    with pytest.raises(TypeError, match="causal"):
        TransformerModel(**SMALL, causal=1)
    with pytest.raises(ValueError, match="layers"):
        TransformerModel(**{**SMALL, "layers": 0})
    model = TransformerModel(**SMALL)
    params = init_transformer(model, "gpt2", [np.random.default_rng(0)])
    with pytest.raises(ValueError, match="x must hold whole numbers"):
        model.predict(params, np.full((2, 5), 7.0))
    with pytest.raises(ValueError, match="x must hold whole numbers"):
        model.predict(params, np.full((2, 5), 0.5))
    with pytest.raises(ValueError, match="x must be token ids"):
        model.predict(params, np.zeros((2, 4)))
    with pytest.raises(ValueError, match="params"):
        model.predict(params[:-1], np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"w_qkv\.0"):
        model.predict([*params[:4], params[4][:, :-1], *params[5:]], np.zeros((2, 5)))
    x, y = _batch(model, replicas=1)
    with pytest.raises(ValueError, match="y must hold labels"):
        model.loss_and_gradients(params, x, y + 3)
    with pytest.raises(ValueError, match="y must be integer labels"):
        model.loss_and_gradients(params, x, y[:, :2])
    with pytest.raises(ValueError, match="x must hold one minibatch per replica"):
        model.loss_and_gradients(params, np.concatenate([x, x]), y)
    with pytest.raises(ValueError, match="scheme"):
        init_transformer(model, "xavier", [np.random.default_rng(0)])
    with pytest.raises(TypeError, match="rngs"):
        init_transformer(model, "gpt2", np.random.default_rng(0))
    with pytest.raises(TypeError, match="model"):
        init_transformer("model", "gpt2", [np.random.default_rng(0)])
    with pytest.raises(ValueError, match="pairs"):
        associative_recall(4, pairs=5, keys=4, values=3, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="framework"):
        framework_attention_defaults("jax", 8, 2)
    with pytest.raises(ValueError, match="heads"):
        framework_attention_defaults("torch", 8, 3)
