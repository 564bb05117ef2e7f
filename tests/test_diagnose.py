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
