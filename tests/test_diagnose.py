"""eiginit.diagnose against dense autograd: spectral norms, mean squares, Jacobian, Hessian.

Each number diagnose computes by power iteration is checked against the dense matrix that
torch.autograd.functional builds on a small model (MLPs, 1-D and 2-D CNNs, float64), and the
model is checked to be left exactly as it was found.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import eiginit

torch = pytest.importorskip("torch")
nn = torch.nn


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(6, 10), nn.GELU(), nn.Linear(10, 10), nn.Tanh(), nn.Linear(10, 4)
    ).double()


def _cnn1d():
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv1d(2, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv1d(4, 4, 3, padding=1, groups=2),
        nn.SiLU(),
        nn.Flatten(),
        nn.Linear(4 * 8, 3),
    ).double()


def _cnn2d():
    torch.manual_seed(2)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1),
        nn.Tanh(),
        nn.Conv2d(3, 2, 3),
        nn.Flatten(),
        nn.Linear(2 * 3 * 3, 3),
    ).double()


MODELS = {
    "mlp": (_mlp, (6,), 4),
    "cnn1d": (_cnn1d, (2, 8), 3),
    "cnn2d": (_cnn2d, (1, 5, 5), 3),
}


def _batch(shape, classes, seed=0, batch=12):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn((batch, *shape), generator=generator, dtype=torch.float64)
    labels = torch.randint(0, classes, (batch,), generator=generator)
    return x, labels


def _dense_hessian(model, x, labels):
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    shapes = [p.shape for n, p in model.named_parameters() if p.requires_grad]
    flat = torch.cat([p.detach().ravel() for n, p in model.named_parameters() if p.requires_grad])

    def loss(theta):
        params, start = {}, 0
        for name, shape in zip(names, shapes, strict=True):
            size = int(np.prod(shape))
            params[name] = theta[start : start + size].reshape(shape)
            start += size
        logits = torch.func.functional_call(model, params, (x,))
        return nn.functional.cross_entropy(logits, labels)

    return torch.autograd.functional.hessian(loss, flat, vectorize=True).numpy()


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_layers_jacobian_and_hessian_match_dense_autograd(kind):
    build, shape, classes = MODELS[kind]
    model = build().eval()
    x, labels = _batch(shape, classes)
    d = eiginit.diagnose(model, x, labels, rng=np.random.default_rng(0), tol=1e-6)

    weighted = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear | nn.Conv1d
                                                                       | nn.Conv2d)]  # fmt: skip
    assert [r.name for r in d.layers] == [n for n, _ in weighted]
    outputs = {}
    hooks = [
        m.register_forward_hook(lambda _m, _i, out, n=n: outputs.__setitem__(n, out.detach()))
        for n, m in weighted
    ]
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    for record, (name, module) in zip(d.layers, weighted, strict=True):
        W = module.weight.detach().reshape(module.weight.shape[0], -1)
        assert (record.fan_out, record.fan_in) == tuple(W.shape)
        np.testing.assert_allclose(record.spectral_norm, torch.linalg.matrix_norm(W, 2), rtol=1e-10)
        out = outputs[name].reshape(len(x), -1)
        np.testing.assert_allclose(record.mean_square, float((out**2).mean()), rtol=1e-12)
        spread = float(out.var(dim=0, unbiased=False).mean())
        np.testing.assert_allclose(record.variance_across_inputs, spread, rtol=1e-10)

    J = torch.autograd.functional.jacobian(model, x[:1]).reshape(-1, x[:1].numel())
    assert d.jacobian_converged
    np.testing.assert_allclose(d.jacobian_sigma_max, torch.linalg.matrix_norm(J, 2), rtol=1e-8)

    eigenvalues = np.linalg.eigvalsh(_dense_hessian(model, x, labels))
    top = eigenvalues[np.argmax(np.abs(eigenvalues))]
    assert d.hessian_top_eigenvalue.converged
    np.testing.assert_allclose(d.hessian_top_eigenvalue.eigenvalue, top, rtol=1e-8)
    np.testing.assert_allclose(
        d.hessian_top_eigenvalue.loss,
        float(nn.functional.cross_entropy(model(x), labels).detach()),
        rtol=1e-12,
    )


def test_without_labels_there_is_no_hessian():
    model = _mlp()
    x, _ = _batch((6,), 4)
    d = eiginit.diagnose(model, x, rng=np.random.default_rng(0))
    assert d.hessian_top_eigenvalue is None
    assert "pass labels" in str(d)


def test_frozen_parameters_are_left_out_of_the_hessian():
    model = _mlp()
    model[0].requires_grad_(False)
    x, labels = _batch((6,), 4)
    d = eiginit.diagnose(model, x, labels, rng=np.random.default_rng(0), tol=1e-6)
    eigenvalues = np.linalg.eigvalsh(_dense_hessian(model, x, labels))  # trainable ones only
    np.testing.assert_allclose(
        d.hessian_top_eigenvalue.eigenvalue,
        eigenvalues[np.argmax(np.abs(eigenvalues))],
        rtol=1e-8,
    )
    assert d.hessian_top_eigenvalue.eigenvector.size == sum(
        p.numel() for p in model.parameters() if p.requires_grad
    )


def test_the_model_is_left_exactly_as_it_was_found():
    torch.manual_seed(3)
    model = nn.Sequential(
        nn.Conv1d(2, 4, 3, padding=1),
        nn.BatchNorm1d(4),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Flatten(),
        nn.Linear(32, 3),
    )
    model.train()
    model[1].eval()  # a mixed state of modes
    model[0].bias.requires_grad_(False)
    model[5].weight.grad = torch.ones_like(model[5].weight)  # a .grad already there stays
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modes = [m.training for m in model.modules()]
    flags = [p.requires_grad for p in model.parameters()]
    hooks = [len(m._forward_hooks) for m in model.modules()]
    x = torch.randn(10, 2, 8, requires_grad=True)
    labels = torch.randint(0, 3, (10,))
    rng_state = torch.random.get_rng_state()

    eiginit.diagnose(model, x, labels, rng=np.random.default_rng(0))

    after = model.state_dict()
    assert before.keys() == after.keys()
    for key, value in before.items():  # parameters and buffers, bitwise
        assert torch.equal(value, after[key]), key
    assert [m.training for m in model.modules()] == modes
    assert [p.requires_grad for p in model.parameters()] == flags
    assert [len(m._forward_hooks) for m in model.modules()] == hooks
    assert torch.equal(model[5].weight.grad, torch.ones_like(model[5].weight))
    assert all(p.grad is None for n, p in model.named_parameters() if n != "5.weight")
    assert x.grad is None
    assert torch.equal(torch.random.get_rng_state(), rng_state)


def test_a_float32_model_with_numpy_input():
    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3))
    x = np.random.default_rng(0).standard_normal((8, 5))
    d = eiginit.diagnose(model, x, np.arange(8) % 3, rng=np.random.default_rng(0))
    J = torch.autograd.functional.jacobian(model, torch.from_numpy(x[:1]).float()).reshape(3, 5)
    np.testing.assert_allclose(d.jacobian_sigma_max, torch.linalg.matrix_norm(J, 2), rtol=1e-4)
    assert d.hessian_top_eigenvalue.converged


def test_same_numbers_from_torch_and_from_the_numpy_weights():
    torch.manual_seed(5)
    model = nn.Sequential(
        nn.Linear(6, 9, bias=False), nn.Tanh(), nn.Linear(9, 9, bias=False), nn.Tanh(),
        nn.Linear(9, 4, bias=False),
    ).double()  # fmt: skip
    x, labels = _batch((6,), 4)
    weights = [p.detach().numpy() for p in model.parameters()]
    from_torch = eiginit.diagnose(model, x, labels, rng=np.random.default_rng(0), tol=1e-7)
    from_numpy = eiginit.diagnose(
        weights, x.numpy(), labels.numpy(), rng=np.random.default_rng(0), activation="tanh",
        tol=1e-7,
    )  # fmt: skip
    for a, b in zip(from_torch.layers, from_numpy.layers, strict=True):
        np.testing.assert_allclose(
            [a.spectral_norm, a.mean_square, a.variance_across_inputs],
            [b.spectral_norm, b.mean_square, b.variance_across_inputs],
            rtol=1e-10,
        )
    np.testing.assert_allclose(from_torch.jacobian_sigma_max, from_numpy.jacobian_sigma_max,
                               rtol=1e-8)  # fmt: skip
    # The numpy network's biases are zero and trainable: the same Hessian plus bias directions.
    eigen_numpy = from_numpy.hessian_top_eigenvalue.eigenvalue
    net = eiginit.MLP(tuple(weights), tuple(np.zeros(W.shape[0]) for W in weights), "tanh")
    direct = eiginit.hessian_top_eigenvalue(net, x.numpy(), labels.numpy(),
                                            rng=np.random.default_rng(0), tol=1e-7)  # fmt: skip
    np.testing.assert_allclose(eigen_numpy, direct.eigenvalue, rtol=1e-8)


def test_numpy_path_against_the_mlp():
    rng = np.random.default_rng(6)
    net = eiginit.MLP.create([5, 8, 8, 3], "relu", eiginit.kaiming_normal, rng=rng, bias_std=0.3)
    x = rng.standard_normal((20, 5))
    d = eiginit.diagnose(net, x, rng=rng)
    fp = net.forward(x)
    for record, W, h in zip(d.layers, net.weights, fp.preactivations, strict=True):
        assert record.spectral_norm == pytest.approx(np.linalg.svd(W, compute_uv=False)[0])
        assert record.mean_square == pytest.approx(np.mean(h**2))
        assert record.variance_across_inputs == pytest.approx(np.mean(np.var(h, axis=0)))
        assert 0 <= record.input_share <= 1
    assert d.jacobian_sigma_max == pytest.approx(
        np.linalg.svd(net.jacobian(x[:1])[0], compute_uv=False)[0]
    )
    assert d.hessian_top_eigenvalue is None


def test_a_bias_held_signal_has_a_small_input_share():
    # nn.Linear's default in a deep ReLU chain: the mean square levels off, held by the
    # biases, while the part that depends on the input vanishes.
    torch.manual_seed(7)
    layers = []
    for _ in range(12):
        layers += [nn.Linear(32, 32), nn.ReLU()]
    model = nn.Sequential(*layers[:-1])
    x = torch.randn(64, 32)
    d = eiginit.diagnose(model, x, rng=np.random.default_rng(0))
    assert d.layers[0].input_share > 0.5
    assert d.layers[-1].input_share < 0.05 * d.layers[0].input_share


def test_text_and_html_name_every_chapter_and_number():
    model = _mlp()
    x, labels = _batch((6,), 4)
    d = eiginit.diagnose(model, x, labels, rng=np.random.default_rng(0))
    text, page = d.to_text(), d._repr_html_()
    assert str(d) == text
    for chapter in ("ch. 3", "ch. 6", "ch. 7", "ch. 13", "Expect"):
        assert chapter in text
    for record in d.layers:
        assert f"{record.spectral_norm:.3g}" in text
        assert f"{record.mean_square:.3g}" in page
    assert f"{d.hessian_top_eigenvalue.eigenvalue:.4g}" in text
    assert f"{d.jacobian_sigma_max:.4g}" in page
    assert page.count("<table>") == 2


@pytest.mark.parametrize(
    ("call", "error", "word"),
    [
        (lambda m, x, y, r: eiginit.diagnose("net", x, rng=r), TypeError, "model"),
        (lambda m, x, y, r: eiginit.diagnose(m, "x", rng=r), TypeError, "x must"),
        (lambda m, x, y, r: eiginit.diagnose(m, x[:1], rng=r), ValueError, "at least two"),
        (lambda m, x, y, r: eiginit.diagnose(m, x.long(), rng=r), TypeError, "floating"),
        (lambda m, x, y, r: eiginit.diagnose(m, x * np.nan, rng=r), ValueError, "finite"),
        (lambda m, x, y, r: eiginit.diagnose(m, x, y[:3], rng=r), ValueError, "labels"),
        (lambda m, x, y, r: eiginit.diagnose(m, x, y.double(), rng=r), TypeError, "labels"),
        (lambda m, x, y, r: eiginit.diagnose(m, x, y + 9, rng=r), ValueError, "labels"),
        (lambda m, x, y, r: eiginit.diagnose(m, x, y, rng=0), TypeError, "rng"),
        (lambda m, x, y, r: eiginit.diagnose(m, x, rng=r, tol=0), ValueError, "tol"),
        (lambda m, x, y, r: eiginit.diagnose(m, x, rng=r, max_iter=0), ValueError, "max_iter"),
        (
            lambda m, x, y, r: eiginit.diagnose(m, x, rng=r, activation="relu"),
            ValueError,
            "activation",
        ),
        (lambda m, x, y, r: eiginit.diagnose(nn.ReLU(), x, rng=r), ValueError, "no parameters"),
        (
            lambda m, x, y, r: eiginit.diagnose(nn.Sequential(nn.BatchNorm1d(6)), x, rng=r),
            ValueError,
            "Linear",
        ),
        (
            lambda m, x, y, r: eiginit.diagnose([np.eye(3)], np.ones((4, 3)), rng=r),
            TypeError,
            "activation",
        ),
        (
            lambda m, x, y, r: eiginit.diagnose(
                [np.ones(3)], np.ones((4, 3)), rng=r, activation="relu"
            ),
            ValueError,
            "2-D",
        ),
        (
            lambda m, x, y, r: eiginit.diagnose(
                [np.eye(3)], np.ones((4, 3)), rng=r, activation="mish"
            ),
            ValueError,
            "activation",
        ),
    ],
)
def test_bad_input_is_refused_with_the_argument_named(call, error, word):
    x, labels = _batch((6,), 4)
    with pytest.raises(error, match=word):
        call(_mlp(), x, labels, np.random.default_rng(0))


def test_eiginit_imports_and_diagnoses_numpy_networks_without_torch():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import numpy as np, eiginit\n"
        "rng = np.random.default_rng(0)\n"
        "d = eiginit.diagnose([np.eye(3), np.eye(3)], rng.standard_normal((5, 3)),"
        " [0, 1, 2, 0, 1], rng=rng, activation='linear')\n"
        "assert abs(d.jacobian_sigma_max - 1) < 1e-12, d.jacobian_sigma_max\n"
        "assert 'torch' not in [k for k, v in sys.modules.items() if v is not None]\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# --- attention and recurrent modules (issue 29) ---------------------------------------------


def _rows(t, batch_first):
    """One row per input: the batch axis first, the rest flattened."""
    t = t if batch_first else t.transpose(0, 1)
    return t.reshape(t.shape[0], -1)


def _check_record(record, name, W, h, radius=None):
    assert record.name == name
    assert (record.fan_out, record.fan_in) == tuple(W.shape)
    np.testing.assert_allclose(record.spectral_norm, torch.linalg.matrix_norm(W, 2), rtol=1e-10)
    np.testing.assert_allclose(record.mean_square, float((h**2).mean()), rtol=1e-12)
    spread = float(h.var(dim=0, unbiased=False).mean())
    np.testing.assert_allclose(record.variance_across_inputs, spread, rtol=1e-10)
    if radius is None:
        assert record.spectral_radius is None
    else:
        np.testing.assert_allclose(record.spectral_radius, radius, rtol=1e-10)


def _check_jacobian_and_hessian(d, model, x, labels):
    with torch.nn.attention.sdpa_kernel(torch.nn.attention.SDPBackend.MATH):
        J = torch.autograd.functional.jacobian(model, x[:1]).reshape(-1, x[:1].numel())
        eigenvalues = np.linalg.eigvalsh(_dense_hessian(model, x, labels))
    assert d.jacobian_converged
    assert d.jacobian_reason is None
    np.testing.assert_allclose(d.jacobian_sigma_max, torch.linalg.matrix_norm(J, 2), rtol=1e-7)
    assert d.hessian_top_eigenvalue.converged
    assert d.hessian_reason is None
    top = eigenvalues[np.argmax(np.abs(eigenvalues))]
    np.testing.assert_allclose(d.hessian_top_eigenvalue.eigenvalue, top, rtol=1e-7)


class _Attention(nn.Module):
    """Tokens (batch, length, 6) -> MultiheadAttention (self or cross) -> mean -> logits."""

    def __init__(self, packed, batch_first):
        super().__init__()
        kdim = None if packed else 4
        self.keys = nn.Linear(6, 6 if packed else 4)
        self.attn = nn.MultiheadAttention(6, 2, kdim=kdim, vdim=kdim, batch_first=batch_first)
        self.head = nn.Linear(6, 3)

    def tokens(self, x):
        q, k = x, self.keys(x)
        if not self.attn.batch_first:
            q, k = q.transpose(0, 1), k.transpose(0, 1)
        return q, k, k

    def forward(self, x):
        out = self.attn(*self.tokens(x))[0]
        return self.head(out.mean(dim=1 if self.attn.batch_first else 0))


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("packed", [True, False])
def test_multihead_attention_records_match_dense_torch(packed, batch_first):
    torch.manual_seed(10)
    model = _Attention(packed, batch_first).double()
    assert model.attn._qkv_same_embed_dim == packed
    x, labels = _batch((5, 6), 3)
    d = eiginit.diagnose(model, x, labels, rng=np.random.default_rng(0), tol=1e-8)

    attn = model.attn
    suffixes = ["in_proj[q]", "in_proj[k]", "in_proj[v]"] if packed else [
        "q_proj_weight", "k_proj_weight", "v_proj_weight"]  # fmt: skip
    names = ["keys", *(f"attn.{s}" for s in suffixes), "attn.out_proj", "head"]
    assert [r.name for r in d.layers] == names  # out_proj once, under its qualified name
    assert [r.kind for r in d.layers[1:5]] == ["MultiheadAttention"] * 4
    if packed:
        weights = attn.in_proj_weight.detach().split(6)
    else:
        weights = [attn.q_proj_weight, attn.k_proj_weight, attn.v_proj_weight]
    biases = attn.in_proj_bias.detach().split(6)
    with torch.no_grad():
        tokens = model.tokens(x)
        for record, name, W, b, t in zip(d.layers[1:4], names[1:4], weights, biases, tokens,
                                         strict=True):  # fmt: skip
            projected = t @ W.detach().T + b  # the projected tokens, by hand
            _check_record(record, name, W.detach(), _rows(projected, batch_first))
        out = attn(*tokens)[0]
    _check_record(d.layers[4], "attn.out_proj", attn.out_proj.weight.detach(),
                  _rows(out, batch_first))  # fmt: skip
    _check_jacobian_and_hessian(d, model, x, labels)


def test_transformer_encoder_layer_end_to_end():
    torch.manual_seed(11)
    model = nn.Sequential(
        nn.TransformerEncoderLayer(8, 2, 16, dropout=0.1, batch_first=True),
        nn.Flatten(),
        nn.Linear(5 * 8, 3),
    ).double()
    model.train()  # dropout on: diagnose measures in eval mode and gives the mode back
    fastpath = torch.backends.mha.get_fastpath_enabled()
    x, labels = _batch((5, 8), 3)
    d = eiginit.diagnose(model, x, labels, rng=np.random.default_rng(0), tol=1e-8)
    assert model.training
    assert model[0].self_attn.training
    assert torch.backends.mha.get_fastpath_enabled() == fastpath

    names = [f"0.self_attn.in_proj[{c}]" for c in "qkv"]
    names += ["0.self_attn.out_proj", "0.linear1", "0.linear2", "2"]
    assert [r.name for r in d.layers] == names
    layer = model[0]
    model.eval()
    with torch.no_grad():  # the post-norm encoder layer, by hand from its submodules
        blocks = zip(layer.self_attn.in_proj_weight.split(8), layer.self_attn.in_proj_bias.split(8),
                     strict=True)  # fmt: skip
        for record, name, (W, b) in zip(d.layers[:3], names, blocks, strict=False):
            _check_record(record, name, W, _rows(x @ W.T + b, True))
        attended = layer.self_attn(x, x, x, need_weights=False)[0]
        _check_record(d.layers[3], names[3], layer.self_attn.out_proj.weight, _rows(attended, True))
        h1 = layer.linear1(layer.norm1(x + attended))
        _check_record(d.layers[4], names[4], layer.linear1.weight, _rows(h1, True))
        h2 = layer.linear2(layer.activation(h1))
        _check_record(d.layers[5], names[5], layer.linear2.weight, _rows(h2, True))
        logits = model(x)
        _check_record(d.layers[6], "2", model[2].weight, logits)
    _check_jacobian_and_hessian(d, model, x, labels)


class _Recurrent(nn.Module):
    """Sequences (batch, steps, 2) -> a 2-layer bidirectional recurrent module -> logits."""

    def __init__(self, kind, batch_first):
        super().__init__()
        self.rnn = getattr(nn, kind)(2, 3, num_layers=2, bidirectional=True,
                                     batch_first=batch_first)  # fmt: skip
        self.head = nn.Linear(6, 3)

    def sequence(self, x):
        return self.rnn(x if self.rnn.batch_first else x.transpose(0, 1))[0]

    def forward(self, x):
        out = self.sequence(x)
        return self.head(out[:, -1] if self.rnn.batch_first else out[-1])


RECURRENT = [("RNN", True), ("LSTM", True), ("LSTM", False), ("GRU", False)]


@pytest.mark.parametrize(("kind", "batch_first"), RECURRENT)
def test_recurrent_records_match_dense_torch(kind, batch_first):
    torch.manual_seed(12)
    model = _Recurrent(kind, batch_first).double()
    x, labels = _batch((4, 2), 3)
    d = eiginit.diagnose(model, x, labels, rng=np.random.default_rng(0), tol=1e-8)

    gates = {"RNN": "", "LSTM": "ifgo", "GRU": "rzn"}[kind]
    with torch.no_grad():
        h = _rows(model.sequence(x), batch_first)  # the module's output, one row per input
    expected = []
    for layer in range(2):
        for suffix in ("", "_reverse"):
            for part in ("ih", "hh"):
                name = f"weight_{part}_l{layer}{suffix}"
                W = getattr(model.rnn, name).detach()
                square = part == "hh" and not gates
                expected.append((f"rnn.{name}", W, square))
                for g, gate in enumerate(gates):
                    expected.append((f"rnn.{name}[{gate}]", W[3 * g : 3 * g + 3], part == "hh"))
    assert [r.name for r in d.layers] == [n for n, _, _ in expected] + ["head"]
    for record, (name, W, recurrent) in zip(d.layers, expected, strict=False):
        radius = float(torch.linalg.eigvals(W).abs().max()) if recurrent else None
        _check_record(record, name, W, h, radius)
        assert record.kind == kind
    _check_jacobian_and_hessian(d, model, x, labels)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_gate_names_follow_pytorch_packing(kind):
    # One step from a zero state: an LSTM's output ignores its forget gate (c_1 = i * g), and a
    # GRU's ignores its reset gate when b_hn = 0 (n = tanh(W_in x + b_in + r * b_hn)). Changing
    # the rows that diagnose names [f] (LSTM) or [r] (GRU) leaves the output alone; the rows
    # it names [i], [g], [o] or [z], [n] do not.
    torch.manual_seed(13)
    rnn = getattr(nn, kind)(2, 3, batch_first=True).double()
    with torch.no_grad():
        rnn.bias_hh_l0.zero_()
    x = torch.randn(4, 1, 2, dtype=torch.float64)  # four sequences of one step
    d = eiginit.diagnose(rnn, x, rng=np.random.default_rng(0))
    names = [r.name for r in d.layers if r.name.startswith("weight_ih_l0[")]
    gates = [name[-2] for name in names]
    assert gates == list("ifgo" if kind == "LSTM" else "rzn")
    silent = "f" if kind == "LSTM" else "r"
    with torch.no_grad():
        before = rnn(x)[0]
        for g, gate in enumerate(gates):
            saved = rnn.weight_ih_l0.clone()
            rnn.weight_ih_l0[3 * g : 3 * g + 3] += 1.0
            changed = not torch.allclose(rnn(x)[0], before, rtol=0, atol=1e-12)
            rnn.weight_ih_l0.copy_(saved)
            assert changed == (gate != silent), gate


def test_attention_and_recurrent_models_are_left_exactly_as_found():
    torch.manual_seed(14)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(4, 4, num_layers=2, dropout=0.5, batch_first=True)
            self.attn = nn.MultiheadAttention(4, 2, dropout=0.5, batch_first=True)
            self.head = nn.Linear(4, 3)

        def forward(self, x):
            h = self.rnn(x)[0]
            return self.head(self.attn(h, h, h)[0].mean(dim=1))

    model = Net()
    model.train()
    model.attn.eval()
    model.rnn.weight_hh_l1.requires_grad_(False)
    model.head.weight.grad = torch.ones_like(model.head.weight)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modes = [m.training for m in model.modules()]
    flags = [p.requires_grad for p in model.parameters()]

    def hook_counts():
        return [
            (len(m._forward_hooks), len(m._forward_pre_hooks),
             len(m._forward_pre_hooks_with_kwargs))
            for m in model.modules()
        ]  # fmt: skip

    def kernels():  # diagnose picks the math kernel of scaled dot-product attention, then not
        cuda = torch.backends.cuda
        return (cuda.flash_sdp_enabled(), cuda.mem_efficient_sdp_enabled(), cuda.math_sdp_enabled())

    hooks = hook_counts()
    fastpath, sdpa = torch.backends.mha.get_fastpath_enabled(), kernels()
    x = torch.randn(6, 5, 4, requires_grad=True)
    labels = torch.randint(0, 3, (6,))
    rng_state = torch.random.get_rng_state()

    d = eiginit.diagnose(model, x, labels, rng=np.random.default_rng(0))
    assert d.jacobian_sigma_max is not None
    assert d.hessian_top_eigenvalue is not None

    after = model.state_dict()
    assert before.keys() == after.keys()
    for key, value in before.items():
        assert torch.equal(value, after[key]), key
    assert [m.training for m in model.modules()] == modes
    assert [p.requires_grad for p in model.parameters()] == flags
    assert hook_counts() == hooks
    assert kernels() == sdpa
    assert torch.equal(model.head.weight.grad, torch.ones_like(model.head.weight))
    assert all(p.grad is None for n, p in model.named_parameters() if n != "head.weight")
    assert x.grad is None
    assert torch.equal(torch.random.get_rng_state(), rng_state)
    assert torch.backends.mha.get_fastpath_enabled() == fastpath


class _OnceDifferentiable(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.tanh(x)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (1 - torch.tanh(x) ** 2)


class _NoDoubleBackward(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 3)

    def forward(self, x):
        return _OnceDifferentiable.apply(self.linear(x))


def test_no_double_backward_gives_none_with_the_reason():
    torch.manual_seed(15)
    x, labels = _batch((4,), 3)
    model = _NoDoubleBackward().double()
    d = eiginit.diagnose(model, x, labels, rng=np.random.default_rng(0))
    assert d.jacobian_sigma_max is None
    assert "once_differentiable" in d.jacobian_reason
    assert d.hessian_top_eigenvalue is None
    assert "once_differentiable" in d.hessian_reason
    text = d.to_text()
    assert "Jacobian sigma_max at x[:1]: not measured (autograd" in text
    assert "Hessian top eigenvalue lambda: not measured (autograd" in text
    W = model.linear.weight.detach()
    np.testing.assert_allclose(d.layers[0].spectral_norm, torch.linalg.matrix_norm(W, 2))


def test_text_and_html_name_the_recurrent_and_attention_chapters():
    torch.manual_seed(16)
    model = _Recurrent("GRU", True).double()
    x, labels = _batch((4, 2), 3)
    d = eiginit.diagnose(model, x, labels, rng=np.random.default_rng(0))
    text, page = d.to_text(), d._repr_html_()
    assert "Recurrent networks (ch. 9)" in text
    assert "Recurrent networks (ch. 9)" in page
    assert "radius" in text.splitlines()[1]
    assert "<th>spectral radius</th>" in page
    radii = [r.spectral_radius for r in d.layers if r.spectral_radius is not None]
    assert len(radii) == 4 * 3  # two layers, two directions, three gates
    assert f"recurrent spectral radius rho: {min(radii):.3g} to {max(radii):.3g}" in text
    for r in d.layers:
        assert r.name in text
        if r.spectral_radius is not None:
            assert f"{r.spectral_radius:.3g}" in page

    model = _Attention(True, True).double()
    x, labels = _batch((5, 6), 3)
    d = eiginit.diagnose(model, x, labels, rng=np.random.default_rng(0))
    text, page = d.to_text(), d._repr_html_()
    for where in (text, page):
        assert "Attention (ch. 14)" in where
        assert "rank collapse" in where
        assert "Recurrent networks" not in where
    assert "radius" not in text.splitlines()[1]
    assert "spectral radius" not in page
    q, k = d.layers[1], d.layers[2]
    assert f"attn.in_proj[q] {q.mean_square:.3g}; attn.in_proj[k] {k.mean_square:.3g}" in text
