"""Exact Hessian-vector products of every engine model (issue 25's curvature item).

Each model's ``hvp`` is checked against central finite differences of its own gradient, against
torch's double backward on the same network written in torch from the same numpy weights,
for symmetry, for replicas against separate single-replica calls, and through
``hessian_top_eigenvalue`` against the dense Hessian's top eigenvalue.
"""

import functools

import numpy as np
import pytest

from eiginit import initializers as ini
from eiginit.models.convolution import CNN1d
from eiginit.models.network import MLP
from eiginit.models.parametrization import parametrize
from eiginit.models.recurrent import ElmanRNN
from eiginit.models.residual import ResidualStack, residual_classifier
from eiginit.theory.curvature import hessian_top_eigenvalue
from eiginit.training.engine import (
    CNNModel,
    MLPModel,
    MuPModel,
    ResidualModel,
    RNNModel,
    replica_sharpness,
)

R = 3  # replicas in every case
B = 5  # minibatch per replica


def _perturb(params, rng, scale=0.3):
    """Make every array generic (no zero biases, no zero Fixup blocks, no alpha = 0)."""
    return [p + scale * rng.standard_normal(p.shape) for p in params]


def _labels(rng, classes):
    return rng.integers(0, classes, (R, B))


def build_mlp(rng, activation="tanh"):
    nets = [MLP.create([4, 6, 5, 3], activation, ini.lecun_normal, rng=rng) for _ in range(R)]
    model, params = MLPModel.from_networks(nets, dtype=np.float64)
    params = _perturb(params, rng, 0.1)
    return model, params, rng.standard_normal((R, B, 4)), _labels(rng, 3)


def build_mup(rng):
    model, params = MuPModel.create(
        parametrize([4, 7, 6, 3]), replicas=R, rng=rng, dtype=np.float64
    )
    params = _perturb(params, rng, 0.2)
    return model, params, rng.standard_normal((R, B, 4)), _labels(rng, 3)


def build_rnn(rng, activation="tanh"):
    w_rec = 0.8 * rng.standard_normal((R, 5, 5)) / np.sqrt(5)
    net = ElmanRNN.create(w_rec, 2, 2, rng=rng, activation=activation, dtype=np.float64)
    model, params = RNNModel.from_network(net, dtype=np.float64)
    params = _perturb(params, rng, 0.1)
    return model, params, rng.standard_normal((R, B, 4, 2)), rng.standard_normal((R, B, 2))


def build_cnn(rng, pool_after=(1,)):
    init = functools.partial(ini.kaiming_normal, nonlinearity="relu")
    net = CNN1d.create(
        length=8,
        depth=2,
        channels=3,
        width=3,
        n_classes=3,
        init=init,
        replicas=R,
        rng=rng,
        pool_after=pool_after,
        dtype=np.float64,
    )
    model, params = CNNModel.from_network(net, dtype=np.float64)
    params = _perturb(params, rng, 0.1)
    return model, params, rng.standard_normal((R, B, 8)), _labels(rng, 3)


RESIDUAL_OPTIONS = {
    "plain-skip": {"skip": True, "norm": None, "post_norm": False},
    "no-skip": {"skip": False, "norm": None, "post_norm": False},
    "batch-norm": {"skip": True, "norm": "batch", "post_norm": False},
    "layer-norm": {"skip": True, "norm": "layer", "post_norm": False},
    "post-norm": {"skip": True, "norm": None, "post_norm": True},
}


def build_residual(rng, options="layer-norm"):
    net = residual_classifier(
        ["kaiming", "rezero", "scaled"],
        inputs=4,
        classes=3,
        width=5,
        depth=2,
        rng=rng,
        dtype=np.float64,
    )
    model, params = ResidualModel.from_network(net, dtype=np.float64)
    params = _perturb(params, rng, 0.2)
    template = ResidualStack(params[2], params[3], **RESIDUAL_OPTIONS[options])
    model = ResidualModel(template, model.train_alpha)
    return model, params, rng.standard_normal((R, B, 4)), _labels(rng, 3)


BUILDERS = {
    "mlp-tanh": functools.partial(build_mlp, activation="tanh"),
    "mlp-gelu": functools.partial(build_mlp, activation="gelu"),
    "mlp-relu": functools.partial(build_mlp, activation="relu"),
    "mup": build_mup,
    "rnn-tanh": functools.partial(build_rnn, activation="tanh"),
    "rnn-silu": functools.partial(build_rnn, activation="silu"),
    "rnn-relu": functools.partial(build_rnn, activation="relu"),
    "cnn-pool": build_cnn,
    "cnn": functools.partial(build_cnn, pool_after=()),
    **{
        f"residual-{name}": functools.partial(build_residual, options=name)
        for name in RESIDUAL_OPTIONS
    },
}


def _dot(a, b):
    """Per-replica inner products of two parameter lists, shape (R,)."""
    return sum(np.sum((u * v).reshape(R, -1), axis=1) for u, v in zip(a, b, strict=True))


def _directions(params, rng):
    return [rng.standard_normal(p.shape) for p in params]


def _finite_difference(model, params, x, y, v, eps=1e-5):
    """Central difference of the model's own gradient along v (float64)."""
    plus = model.loss_and_gradients([p + eps * d for p, d in zip(params, v, strict=True)], x, y)[1]
    minus = model.loss_and_gradients([p - eps * d for p, d in zip(params, v, strict=True)], x, y)[1]
    return [(a - b) / (2 * eps) for a, b in zip(plus, minus, strict=True)]


def _relative_error(a, b):
    """Per-replica ||a - b|| / ||b|| over all arrays."""
    diff = [u - w for u, w in zip(a, b, strict=True)]
    return np.sqrt(_dot(diff, diff) / _dot(b, b))


@pytest.mark.parametrize("name", list(BUILDERS))
def test_hvp_matches_finite_differences_of_the_gradient(name):
    rng = np.random.default_rng(1)
    model, params, x, y = BUILDERS[name](rng)
    v = _directions(params, rng)
    exact = model.hvp(params, x, y, v)
    assert [e.shape for e in exact] == [p.shape for p in params]
    assert all(e.dtype == np.float64 for e in exact)
    error = _relative_error(_finite_difference(model, params, x, y, v), exact)
    # central differences: truncation ~eps^2 = 1e-10, rounding ~1e-16 / eps = 1e-11
    assert np.all(error < 1e-7), error
    # and the products are not trivially small
    assert np.all(np.sqrt(_dot(exact, exact)) > 1e-3)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_hvp_is_symmetric(name):
    rng = np.random.default_rng(2)
    model, params, x, y = BUILDERS[name](rng)
    v, w = _directions(params, rng), _directions(params, rng)
    vHw = _dot(v, model.hvp(params, x, y, w))
    wHv = _dot(w, model.hvp(params, x, y, v))
    np.testing.assert_allclose(vHw, wHv, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_replicas_equal_separate_single_replica_calls(name):
    rng = np.random.default_rng(3)
    model, params, x, y = BUILDERS[name](rng)
    v = _directions(params, rng)
    together = model.hvp(params, x, y, v)
    for r in range(R):
        one = [np.ascontiguousarray(a[r : r + 1]) for a in (*params,)]
        alone_model = model
        if isinstance(model, ResidualModel):
            alone_model = ResidualModel(model.template, model.train_alpha[r : r + 1])
        alone = alone_model.hvp(one, x[r : r + 1], y[r : r + 1], [d[r : r + 1] for d in v])
        for a, b in zip(together, alone, strict=True):
            np.testing.assert_allclose(a[r : r + 1], b, rtol=1e-12, atol=1e-14)


def test_hvp_is_linear_in_the_direction():
    rng = np.random.default_rng(4)
    model, params, x, y = build_residual(rng, "batch-norm")
    v, w = _directions(params, rng), _directions(params, rng)
    combined = model.hvp(params, x, y, [2 * a - 3 * b for a, b in zip(v, w, strict=True)])
    separate = [
        2 * a - 3 * b
        for a, b in zip(model.hvp(params, x, y, v), model.hvp(params, x, y, w), strict=True)
    ]
    for a, b in zip(combined, separate, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- torch autograd
def _torch_cross_entropy(torch, z, y):
    """Sum over replicas of each replica's mean cross-entropy; z (R, B, C), y (R, B)."""
    log_p = torch.log_softmax(z, dim=2)
    return -log_p.gather(2, torch.as_tensor(y)[..., None]).squeeze(2).mean(dim=1).sum()


def _torch_loss(torch, model, ps, x, y):
    """The same loss as the numpy model, written in torch on the tensors `ps`."""
    F = torch.nn.functional
    act = {
        "tanh": torch.tanh,
        "relu": torch.relu,
        "gelu": F.gelu,
        "silu": F.silu,
        "linear": lambda h: h,
    }
    x = torch.as_tensor(x)
    if isinstance(model, MLPModel):
        depth = len(model.activations)
        h = x
        for layer, name in enumerate(model.activations):
            h = act[name](h @ ps[layer].transpose(1, 2) + ps[depth + layer][:, None, :])
        return _torch_cross_entropy(torch, h, y)
    if isinstance(model, MuPModel):
        h = x
        for i, W in enumerate(ps):
            h = h @ W.transpose(1, 2)
            h = h if i == len(ps) - 1 else torch.relu(h)
        return _torch_cross_entropy(torch, h, y)
    if isinstance(model, RNNModel):
        U, W, b, V, c = ps
        h = torch.zeros(x.shape[0], x.shape[1], W.shape[1], dtype=x.dtype)
        for t in range(x.shape[2]):
            h = act[model.activation](
                x[:, :, t] @ U.transpose(1, 2) + h @ W.transpose(1, 2) + b[:, None]
            )
        out = h @ V.transpose(1, 2) + c[:, None]
        return ((out - torch.as_tensor(y)) ** 2).mean(dim=(1, 2)).sum()
    if isinstance(model, CNNModel):
        depth = (len(ps) - 2) // 2
        h = x.transpose(1, 2)[..., None]  # (R, n, B, 1), position-major as in eiginit
        for layer in range(depth):
            K, bias = ps[layer], ps[depth + layer]
            n, width = h.shape[1], K.shape[3]
            left = (width - 1) // 2
            padded = torch.cat([h[:, n - left :], h, h[:, : width - 1 - left]], dim=1)
            pre = sum(
                torch.einsum("rnbi,roi->rnbo", padded[:, s : s + n], K[..., s])
                for s in range(width)
            )
            h = torch.relu(pre + bias[:, None, None, :])
            if layer + 1 in model.pool_after:
                Rr, n, Bb, c = h.shape
                h = h.reshape(Rr, n // 2, 2, Bb, c).mean(dim=2)
        Rr, n, Bb, c = h.shape
        flat = h.permute(0, 2, 1, 3).reshape(Rr, Bb, n * c)
        return _torch_cross_entropy(torch, flat @ ps[-2].transpose(1, 2) + ps[-1][:, None], y)
    assert isinstance(model, ResidualModel)
    w_in, b_in, W, alpha, w_out, b_out = ps
    stack = model.template
    axis = {"batch": -2, "layer": -1}.get(stack.norm or "", 0)

    def normalize(u, dim):
        centred = u - u.mean(dim=dim, keepdim=True)
        return centred / torch.sqrt((centred**2).mean(dim=dim, keepdim=True) + 1e-5)

    h = x @ w_in.transpose(1, 2) + b_in[:, None]
    for layer in range(W.shape[1]):
        u = h
        for j in range(W.shape[2]):
            z = normalize(u, axis) if axis else u
            u = torch.relu(z) @ W[:, layer, j].transpose(1, 2)
        total = alpha[:, layer, None, None] * u + (h if stack.skip else 0)
        h = normalize(total, -1) if stack.post_norm else total
    z = torch.relu(h) @ w_out.transpose(1, 2) + b_out[:, None]
    return _torch_cross_entropy(torch, z, y)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_hvp_matches_torch_double_backward(name):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    model, params, x, y = BUILDERS[name](rng)
    v = _directions(params, rng)
    ps = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in params]
    loss = _torch_loss(torch, model, ps, x, y)
    np.testing.assert_allclose(
        float(loss.detach()), float(np.sum(model.loss_and_gradients(params, x, y)[0])), rtol=1e-12
    )
    grads = torch.autograd.grad(loss, ps, create_graph=True)
    inner = sum((g * torch.as_tensor(d)).sum() for g, d in zip(grads, v, strict=True))
    reference = [t.detach().numpy() for t in torch.autograd.grad(inner, ps)]
    error = _relative_error(model.hvp(params, x, y, v), reference)
    assert np.all(error < 1e-12), error


# ----------------------------------------------------------------------------- eigenvalues
def _shared_batch(x, y):
    """One batch shared by every replica (replica 0's), broadcast to the replica axis."""
    return np.broadcast_to(x[0], x.shape), np.broadcast_to(y[0], y.shape)


def _dense_hessians(model, params, x, y):
    """Every replica's Hessian, column by column from products with unit vectors, (R, P, P)."""
    sizes = [p[0].size for p in params]
    P = sum(sizes)
    H = np.empty((R, P, P))
    for k in range(P):
        e = np.zeros((R, P))
        e[:, k] = 1.0
        parts = np.split(e, np.cumsum(sizes)[:-1], axis=1)
        v = [part.reshape(p.shape) for part, p in zip(parts, params, strict=True)]
        H[:, :, k] = np.concatenate([a.reshape(R, -1) for a in model.hvp(params, x, y, v)], axis=1)
    return H


def _dominant(H):
    """The eigenvalue of largest modulus of each symmetric matrix, and the next modulus."""
    values = np.linalg.eigvalsh(H)
    order = np.argsort(-np.abs(values), axis=1)
    ranked = np.take_along_axis(values, order, axis=1)
    return ranked[:, 0], np.abs(ranked[:, 1])


@pytest.mark.parametrize("name", list(BUILDERS))
def test_hessian_top_eigenvalue_and_sharpness_match_the_dense_hessian(name):
    rng = np.random.default_rng(6)
    model, params, x, y = BUILDERS[name](rng)
    H = _dense_hessians(model, params, *_shared_batch(x, y))
    np.testing.assert_allclose(H, H.transpose(0, 2, 1), rtol=0, atol=1e-14 * np.abs(H).max())
    top, second = _dominant(H)
    assert np.all(second < 0.99 * np.abs(top))  # a gap, so power iteration converges
    results = hessian_top_eigenvalue(
        model, x[0], y[0], params=params, rng=np.random.default_rng(0), tol=1e-9, max_iter=5000
    )
    assert len(results) == R
    for r, result in enumerate(results):
        assert result.converged, result.reason
        assert result.eigenvector.shape == (H.shape[1],)
        np.testing.assert_allclose(result.eigenvalue, top[r], rtol=1e-10)
    sharp = replica_sharpness(
        model, params, x[0], y[0], rng=np.random.default_rng(0), iterations=800
    )
    np.testing.assert_allclose(sharp, top, rtol=1e-8)


def test_engine_mlp_gives_the_eigenvalue_of_the_mlp_path():
    rng = np.random.default_rng(7)
    other, net = (MLP.create([4, 8, 3], "tanh", ini.lecun_normal, rng=rng) for _ in range(2))
    x, y = rng.standard_normal((16, 4)), rng.integers(0, 3, 16)
    direct = hessian_top_eigenvalue(net, x, y, rng=np.random.default_rng(0), tol=1e-10)
    model, params = MLPModel.from_networks([other, net], dtype=np.float64)
    engine = hessian_top_eigenvalue(
        model, x, y, params=params, replica=1, rng=np.random.default_rng(0), tol=1e-10
    )
    assert direct.converged
    assert engine.converged
    np.testing.assert_allclose(engine.eigenvalue, direct.eigenvalue, rtol=1e-10)
    np.testing.assert_allclose(engine.loss, direct.loss, rtol=1e-14)


@pytest.mark.parametrize("name", ["mlp-tanh", "mup", "rnn-tanh", "cnn-pool", "residual-batch-norm"])
def test_float32_parameters_give_float32_products_close_to_float64(name):
    rng = np.random.default_rng(8)
    model, params, x, y = BUILDERS[name](rng)
    v = _directions(params, rng)
    single = model.hvp(
        [p.astype(np.float32) for p in params],
        x.astype(np.float32),
        y if y.dtype.kind == "i" else y.astype(np.float32),
        [d.astype(np.float32) for d in v],
    )
    assert all(a.dtype == np.float32 for a in single)
    error = _relative_error([a.astype(np.float64) for a in single], model.hvp(params, x, y, v))
    assert np.all(error < 1e-5), error


# ----------------------------------------------------------------------------- bad input
def _bad_vectors(params):
    """(vectors, error, message) triples every hvp must refuse, naming the argument."""
    good = [np.ones_like(p) for p in params]
    huge = [np.full(p.shape, 1e300) for p in params]
    return [
        (np.ones(3), TypeError, r"vectors must be a list of \d+ arrays"),
        (good[:-1], ValueError, r"vectors must hold one array per parameter array"),
        ([np.ones(3), *good[1:]], ValueError, r"vectors\[0\] must have the shape of params\[0\]"),
        ([*good[:1], good[1].astype(int), *good[2:]], TypeError, r"vectors\[1\] must be a float"),
        ([good[0] + 0j, *good[1:]], TypeError, r"vectors\[0\] must be a float array"),
        ([g.tolist() for g in good], TypeError, r"vectors\[0\] must be a float array"),
        (
            [*good[:-1], np.full(params[-1].shape, np.nan)],
            ValueError,
            r"vectors\[\d+\] must be finite",
        ),
        (huge, ValueError, r"vectors\[0\] has entries beyond float32"),
    ]


@pytest.mark.parametrize("name", ["mlp-tanh", "mup", "rnn-tanh", "cnn-pool", "residual-layer-norm"])
def test_hvp_refuses_bad_vectors_by_name(name):
    model, params, x, y = BUILDERS[name](np.random.default_rng(9))
    params = [p.astype(np.float32) for p in params]
    x = x.astype(np.float32)
    y = y if y.dtype.kind == "i" else y.astype(np.float32)
    for vectors, error, message in _bad_vectors(params):
        with pytest.raises(error, match=message):
            model.hvp(params, x, y, vectors)
    good = [np.ones_like(p) for p in params]
    with pytest.raises(TypeError, match="params must be a non-empty list"):
        model.hvp(params[0], x, y, good)
    with pytest.raises(TypeError, match=r"params\[1\] must be a float32 or float64"):
        model.hvp([params[0], params[1].astype(int), *params[2:]], x, y, good)
    with pytest.raises(ValueError, match="x must hold one non-empty minibatch per replica"):
        model.hvp(params, x[:2], y[:2], good)
    with pytest.raises(ValueError, match="y must have one target per input of x"):
        model.hvp(params, x, y[:, :-1], good)
    with pytest.raises(ValueError, match="x must be finite"):
        model.hvp(params, np.full_like(x, np.nan), y, good)
    with pytest.raises(TypeError, match="x must be a real array"):
        model.hvp(params, x.tolist(), y, good)


@pytest.mark.parametrize("name", ["mlp-tanh", "mup", "cnn-pool", "residual-layer-norm"])
def test_classifier_hvp_refuses_labels_it_cannot_score(name):
    model, params, x, y = BUILDERS[name](np.random.default_rng(9))
    good = [np.ones_like(p) for p in params]
    with pytest.raises(ValueError, match=r"y must hold labels in 0\.\.2"):
        model.hvp(params, x, y + 3, good)
    with pytest.raises(TypeError, match="y must hold integer class labels"):
        model.hvp(params, x, y.astype(float), good)


def test_hvp_refuses_inputs_of_the_wrong_shape_for_the_architecture():
    rng = np.random.default_rng(10)
    for name, bad in (
        ("rnn-tanh", lambda x: x[:, :, 0]),
        ("cnn", lambda x: x[:, :, :-1]),
        ("residual-plain-skip", lambda x: x[:, :, :-1]),
    ):
        model, params, x, y = BUILDERS[name](rng)
        with pytest.raises(ValueError, match="x must have shape"):
            model.hvp(params, bad(x), y, [np.ones_like(p) for p in params])
    model, params, x, y = build_residual(rng, "batch-norm")
    with pytest.raises(ValueError, match="batch norm needs a batch of at least 2"):
        model.hvp(params, x[:, :1], y[:, :1], [np.ones_like(p) for p in params])


def test_hessian_top_eigenvalue_refuses_bad_engine_arguments_by_name():
    rng = np.random.default_rng(11)
    model, params, x, y = build_cnn(rng)
    gen = np.random.default_rng(0)
    with pytest.raises(TypeError, match="params must be given with an engine model"):
        hessian_top_eigenvalue(model, x[0], y[0], rng=gen)
    with pytest.raises(ValueError, match=r"replica must be an integer <= 2"):
        hessian_top_eigenvalue(model, x[0], y[0], params=params, replica=3, rng=gen)
    with pytest.raises(TypeError, match="replica must be an integer"):
        hessian_top_eigenvalue(model, x[0], y[0], params=params, replica=1.5, rng=gen)
    with pytest.raises(ValueError, match=r"gauss_newton=True needs an eiginit\.MLP"):
        hessian_top_eigenvalue(model, x[0], y[0], params=params, gauss_newton=True, rng=gen)
    with pytest.raises(TypeError, match=r"net must be an eiginit\.MLP or an engine model"):
        hessian_top_eigenvalue("cnn", x[0], y[0], params=params, rng=gen)
    with pytest.raises(TypeError, match="params must be a non-empty list"):
        hessian_top_eigenvalue(model, x[0], y[0], params=params[0], replica=0, rng=gen)
    with pytest.raises(ValueError, match=r"v0 must be a flat vector of shape \(\d+,\)"):
        hessian_top_eigenvalue(model, x[0], y[0], params=params, replica=0, v0=[1.0], rng=gen)
    with pytest.raises(TypeError, match="x must be a numpy array"):
        hessian_top_eigenvalue(model, x[0].tolist(), y[0], params=params, replica=0, rng=gen)
    with pytest.raises(ValueError, match="labels must have one entry per row of x"):
        hessian_top_eigenvalue(model, x[0], y[0, :-1], params=params, replica=0, rng=gen)
    with pytest.raises(ValueError, match=r"x and labels must fit the model.*labels in 0\.\.2"):
        hessian_top_eigenvalue(model, x[0], y[0] + 5, params=params, replica=0, rng=gen)
    net = MLP.create([4, 3], "tanh", ini.lecun_normal, rng=rng)
    with pytest.raises(TypeError, match="params and replica are for an engine model"):
        hessian_top_eigenvalue(net, x[0, :, :4], y[0], params=params, rng=gen)


def test_engine_eigenvector_warm_starts_the_next_call():
    rng = np.random.default_rng(12)
    model, params, x, y = build_rnn(rng)
    first = hessian_top_eigenvalue(
        model, x[0], y[0], params=params, replica=2, rng=np.random.default_rng(0), tol=1e-8,
        max_iter=5000,
    )  # fmt: skip
    assert first.converged
    assert first.iterations > 5
    again = hessian_top_eigenvalue(
        model, x[0], y[0], params=params, replica=2, rng=np.random.default_rng(1), tol=1e-8,
        v0=first.eigenvector,
    )  # fmt: skip
    assert again.converged
    assert again.iterations <= 2
    np.testing.assert_allclose(again.eigenvalue, first.eigenvalue, rtol=1e-12)
    np.testing.assert_allclose(again.loss, model.loss_and_gradients(
        [p[2:3] for p in params], x[:1], y[:1])[0][0], rtol=1e-14)  # fmt: skip
