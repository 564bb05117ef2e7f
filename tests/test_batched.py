"""The book's MLP trained as stacked replicas by the one engine (`eiginit.fit` + `MLPModel`).

The old trainers `train` and `train_batched` are gone; what they were tested for stays: each
replica of a stacked run is the single network trained alone by a hand-written loop (MLP.forward,
MLP.backward, softmax cross-entropy, SGD-momentum or Adam as their papers write them), replicas
do not interact, early stopping keeps the first best validation epoch, a diverging replica is
marked and leaves the others alone, and bad input is refused by `fit` or the adapter.
"""

import numpy as np
import pytest

from eiginit import initializers as ini
from eiginit.datasets import Dataset
from eiginit.models.losses import accuracy, softmax_cross_entropy
from eiginit.models.network import MLP
from eiginit.training.engine import MLPModel, fit
from eiginit.training.study import build_contender, contenders


def blobs(n=150, classes=3, features=4, seed=0, dtype=np.float64):
    """A small classification problem with a train / validation / test split."""
    rng = np.random.default_rng(seed)
    centres = 2.0 * rng.standard_normal((classes, features))
    y = rng.integers(0, classes, n)
    x = (centres[y] + rng.standard_normal((n, features))).astype(dtype)
    a, b = n // 2, 3 * n // 4
    return Dataset(x[:a], y[:a], x[b:], y[b:], classes, "blobs", x_val=x[a:b], y_val=y[a:b])


def nets(k, sizes=(4, 16, 16, 3), activation="tanh", dtype=np.float64):
    return [
        MLP.create(sizes, activation, ini.lecun_normal, rng=np.random.default_rng(s), dtype=dtype)
        for s in range(k)
    ]


def stacked(group, data, **kw):
    model, params = MLPModel.from_networks(group, dtype=group[0].dtype)
    return model, fit(model, params, data, **kw)


def loop(net, data, *, seed, optimizer, lr, epochs, batch_size, momentum=0.9,
         betas=(0.9, 0.999), eps=1e-8):  # fmt: skip
    """One network trained by hand: the reference each replica must reproduce."""
    params = [W.copy() for W in net.weights] + [b.copy() for b in net.biases]
    state1 = [np.zeros_like(p) for p in params]
    state2 = [np.zeros_like(p) for p in params]
    rng, n, t = np.random.default_rng(seed), len(data.x_train), 0
    depth = net.depth
    losses = [softmax_cross_entropy(net(data.x_train), data.y_train)[0]]
    for _ in range(epochs):
        order, total = rng.permutation(n), 0.0
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            net = net.with_parameters(params[:depth], params[depth:])
            forward = net.forward(data.x_train[idx])
            loss, dz = softmax_cross_entropy(forward.output, data.y_train[idx])
            g = net.backward(forward, dz)
            grads = [*g.weights, *g.biases]
            t += 1
            for i, (p, gr) in enumerate(zip(params, grads, strict=True)):
                if optimizer == "sgd":  # v <- mu v + g, theta <- theta - lr v
                    state1[i] = momentum * state1[i] + gr
                    params[i] = p - lr * state1[i]
                else:  # Kingma & Ba 2015, Algorithm 1
                    state1[i] = betas[0] * state1[i] + (1 - betas[0]) * gr
                    state2[i] = betas[1] * state2[i] + (1 - betas[1]) * gr**2
                    m_hat = state1[i] / (1 - betas[0] ** t)
                    v_hat = state2[i] / (1 - betas[1] ** t)
                    params[i] = p - lr * m_hat / (np.sqrt(v_hat) + eps)
            total += loss * len(idx)
        losses.append(total / n)
    return np.array(losses)


@pytest.mark.parametrize(
    ("optimizer", "lrs"), [("adam", [1e-3, 1e-2, 3e-2]), ("sgd", [0.01, 0.05, 0.1])]
)
def test_each_replica_is_the_network_trained_alone_by_hand(optimizer, lrs):
    data, group = blobs(), nets(3)
    _, result = stacked(group, data, lr=lrs, seeds=[7, 8, 9], optimizer=optimizer, epochs=4,
                        batch_size=16)  # fmt: skip
    for r in range(3):
        ref = loop(group[r], data, seed=7 + r, optimizer=optimizer, lr=lrs[r], epochs=4,
                   batch_size=16)  # fmt: skip
        np.testing.assert_allclose(result.train_loss[r], ref, rtol=1e-10)
    assert not result.diverged.any()


def test_float32_replicas_match_the_float64_loop_to_float32_rounding():
    data = blobs(dtype=np.float32)
    group = nets(2, dtype=np.float32)
    _, result = stacked(group, data, lr=1e-2, seeds=[1, 2], epochs=3, batch_size=16)
    assert result.params[0].dtype == np.float32
    data64 = blobs()
    for r, net in enumerate(nets(2)):
        ref = loop(net, data64, seed=1 + r, optimizer="adam", lr=1e-2, epochs=3, batch_size=16)
        np.testing.assert_allclose(result.train_loss[r], ref, rtol=1e-4)


def test_replicas_do_not_interact():
    data, group = blobs(), nets(3)
    _, together = stacked(group, data, lr=[1e-3, 1e-2, 3e-2], seeds=[0, 1, 2], epochs=3)
    _, alone = stacked(group[1:2], data, lr=[1e-2], seeds=[1], epochs=3)
    np.testing.assert_allclose(together.train_loss[1], alone.train_loss[0], rtol=1e-12)
    assert together.best_epoch[1] == alone.best_epoch[0]


def test_kept_weights_are_the_first_best_validation_epoch():
    data, group = blobs(), nets(4)
    model, result = stacked(group, data, lr=[1e-4, 1e-3, 1e-2, 1e-1], seeds=range(4), epochs=6)
    assert np.array_equal(result.best_epoch, np.argmax(result.val_metric, axis=1))
    for r in range(4):
        net = model.network(result.params, r)
        assert result.best_value[r] == accuracy(net(data.x_val), data.y_val)
    np.testing.assert_array_equal(  # the inputs were not modified
        group[0].weights[0],
        MLP.create((4, 16, 16, 3), "tanh", ini.lecun_normal, rng=np.random.default_rng(0))
        .weights[0],
    )  # fmt: skip


def test_a_diverging_replica_is_counted_and_leaves_the_others_alone():
    data = blobs()
    big = [MLP.create((4, 16, 16, 3), "relu", ini.kaiming_normal, rng=np.random.default_rng(0))] * 2
    with np.errstate(all="raise"):  # no floating-point warning escapes
        _, result = stacked(big, data, lr=[1e-2, 1e12], seeds=[0, 0], optimizer="sgd", epochs=3)
    assert result.diverged.tolist() == [False, True]
    assert np.isnan(result.train_loss[1, -1])
    assert np.isfinite(result.train_loss[0]).all()
    _, alone = stacked(big[:1], data, lr=[1e-2], seeds=[0], optimizer="sgd", epochs=3)
    np.testing.assert_allclose(result.train_loss[0], alone.train_loss[0], rtol=1e-12)


def test_patience_stops_when_no_replica_improves():
    data, group = blobs(), nets(2)
    _, result = stacked(group, data, lr=1e-9, seeds=[0, 1], epochs=20, patience=2)
    assert result.epochs_run == 2  # nothing moves at this rate: epochs 1 and 2 fail to improve
    assert np.isnan(result.train_loss[:, 3:]).all()


def test_without_validation_the_last_epoch_is_kept():
    d = blobs()
    data = Dataset(d.x_train, d.y_train, d.x_test, d.y_test, 3, "no validation")
    _, result = stacked(nets(2), data, lr=1e-2, seeds=[0, 1], epochs=3)
    assert result.best_epoch.tolist() == [3, 3]
    assert np.isnan(result.val_metric).all()


def test_the_mlp_adapter_and_fit_reject_bad_input():
    data, group = blobs(), nets(2)
    with pytest.raises(ValueError, match="share one architecture"):
        MLPModel.from_networks([group[0], nets(1, sizes=(4, 8, 3))[0]])
    with pytest.raises(TypeError, match="nets must be a list"):
        MLPModel.from_networks(group[0])
    model, params = MLPModel.from_networks(group)
    with pytest.raises(ValueError, match="lr"):
        fit(model, params, data, lr=[1e-3], seeds=0)
    with pytest.raises(ValueError, match="lr"):
        fit(model, params, data, lr=[1e-3, -1.0], seeds=0)
    with pytest.raises(TypeError, match="seeds must hold non-negative integers"):
        fit(model, params, data, lr=1e-3, seeds=[0, 1.5])
    with pytest.raises(ValueError, match="optimizer must be"):
        fit(model, params, data, lr=1e-3, seeds=0, optimizer="rmsprop")
    with pytest.raises(ValueError, match="momentum must be"):
        fit(model, params, data, lr=1e-3, seeds=0, optimizer="sgd", momentum=1.0)


def test_study_lsuv_rescales_every_layer_and_contenders_are_as_described():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 8))
    by_name = {c.name: c for c in contenders("relu")}
    net, touched = build_contender(by_name["LSUV"], [8] + [32] * 5 + [3], "relu", seed=0, x_batch=x)
    assert touched == net.depth  # gain-1 orthogonal start: every ReLU layer needs rescaling
    tanh_names = [c.name for c in contenders("tanh")]
    assert "critical orthogonal" in tanh_names
    assert "seed √2·G/ρ(G)" not in tanh_names  # noqa: RUF001
    torch_net, _ = build_contender(
        by_name["PyTorch default"], [8, 32, 3], "relu", seed=0, x_batch=x
    )
    bound = 1 / np.sqrt(8)
    assert 0 < np.abs(torch_net.biases[0]).max() <= bound  # nn.Linear's uniform bias
