import numpy as np
import pytest

from eiginit import initializers as ini
from eiginit.batched import train_batched
from eiginit.datasets import Dataset
from eiginit.network import MLP
from eiginit.study import build_contender, contenders
from eiginit.training import accuracy, train


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


@pytest.mark.parametrize(
    ("optimizer", "lrs"), [("adam", [1e-3, 1e-2, 3e-2]), ("sgd", [0.01, 0.05, 0.1])]
)
def test_batched_losses_equal_the_single_network_loop(optimizer, lrs):
    data, group = blobs(), nets(3)
    batched = train_batched(group, data, lrs=lrs, seeds=[7, 8, 9], optimizer=optimizer, epochs=4,
                            batch_size=16)  # fmt: skip
    for r in range(3):
        single = train(group[r], data, rng=np.random.default_rng(7 + r), optimizer=optimizer,
                       lr=lrs[r], epochs=4, batch_size=16, progress=False)  # fmt: skip
        np.testing.assert_allclose(batched.train_loss[r], single.train_loss, rtol=1e-12)
    assert not batched.diverged.any()


def test_float32_batched_matches_the_loop_to_float32_rounding():
    data = blobs(dtype=np.float32)
    group = nets(2, dtype=np.float32)
    batched = train_batched(group, data, lrs=1e-2, seeds=[1, 2], epochs=3, batch_size=16)
    assert batched.weights[0].dtype == np.float32
    for r in range(2):
        single = train(group[r], data, rng=np.random.default_rng(1 + r), lr=1e-2, epochs=3,
                       batch_size=16, progress=False)  # fmt: skip
        np.testing.assert_allclose(batched.train_loss[r], single.train_loss, rtol=1e-4)


def test_replicas_do_not_interact():
    data, group = blobs(), nets(3)
    together = train_batched(group, data, lrs=[1e-3, 1e-2, 3e-2], seeds=[0, 1, 2], epochs=3)
    alone = train_batched(group[1:2], data, lrs=[1e-2], seeds=[1], epochs=3)
    np.testing.assert_allclose(together.train_loss[1], alone.train_loss[0], rtol=1e-12)
    assert together.best_epoch[1] == alone.best_epoch[0]


def test_kept_weights_are_the_first_best_validation_epoch_and_test_is_theirs():
    data, group = blobs(), nets(4)
    result = train_batched(group, data, lrs=[1e-4, 1e-3, 1e-2, 1e-1], seeds=range(4), epochs=6)
    assert np.array_equal(result.best_epoch, np.argmax(result.val_accuracy, axis=1))
    for r in range(4):
        net = result.network(r)
        assert result.test_accuracy[r] == accuracy(net(data.x_test), data.y_test)
        assert result.best_val_accuracy[r] == accuracy(net(data.x_val), data.y_val)
    assert group[0].weights[0] is not result.weights[0]  # the inputs were not modified
    np.testing.assert_array_equal(
        group[0].weights[0],
        MLP.create((4, 16, 16, 3), "tanh", ini.lecun_normal, rng=np.random.default_rng(0)).weights[
            0
        ],
    )


def test_a_diverging_replica_is_counted_and_leaves_the_others_alone():
    data = blobs()
    big = [MLP.create((4, 16, 16, 3), "relu", ini.kaiming_normal, rng=np.random.default_rng(0))] * 2
    with np.errstate(all="raise"):  # no floating-point warning escapes
        result = train_batched(big, data, lrs=[1e-2, 1e12], seeds=[0, 0], optimizer="sgd",
                               epochs=3)  # fmt: skip
    assert result.diverged.tolist() == [False, True]
    assert np.isnan(result.train_loss[1, -1])
    assert np.isfinite(result.train_loss[0]).all()
    alone = train_batched(big[:1], data, lrs=[1e-2], seeds=[0], optimizer="sgd", epochs=3)
    np.testing.assert_allclose(result.train_loss[0], alone.train_loss[0], rtol=1e-12)


def test_patience_stops_when_no_replica_improves():
    data, group = blobs(), nets(2)
    result = train_batched(group, data, lrs=1e-9, seeds=[0, 1], epochs=20, patience=2)
    assert result.epochs_run == 2  # nothing moves at this rate: epochs 1 and 2 fail to improve
    assert np.isnan(result.train_loss[:, 3:]).all()


def test_without_validation_the_last_epoch_is_kept():
    d = blobs()
    data = Dataset(d.x_train, d.y_train, d.x_test, d.y_test, 3, "no validation")
    result = train_batched(nets(2), data, lrs=1e-2, seeds=[0, 1], epochs=3)
    assert result.best_epoch.tolist() == [3, 3]
    assert np.isnan(result.val_accuracy).all()


def test_train_batched_rejects_bad_input():
    data, group = blobs(), nets(2)
    with pytest.raises(ValueError, match="share one architecture"):
        train_batched([group[0], nets(1, sizes=(4, 8, 3))[0]], data, lrs=1e-3, seeds=0)
    with pytest.raises(TypeError, match="nets must be a list"):
        train_batched(group[0], data, lrs=1e-3, seeds=0)
    with pytest.raises(ValueError, match="one entry per network"):
        train_batched(group, data, lrs=[1e-3], seeds=0)
    with pytest.raises(ValueError, match="lrs must be"):
        train_batched(group, data, lrs=[1e-3, -1.0], seeds=0)
    with pytest.raises(TypeError, match="seeds must be non-negative integers"):
        train_batched(group, data, lrs=1e-3, seeds=[0, 1.5])
    with pytest.raises(ValueError, match="optimizer must be"):
        train_batched(group, data, lrs=1e-3, seeds=0, optimizer="rmsprop")
    with pytest.raises(ValueError, match="momentum must be"):
        train_batched(group, data, lrs=1e-3, seeds=0, optimizer="sgd", momentum=1.0)
    with pytest.raises(ValueError, match=r"data\.x_train must have shape \(n, 5\)"):
        train_batched(nets(2, sizes=(5, 8, 3)), data, lrs=1e-3, seeds=0)
    with pytest.raises(TypeError, match=r"data must be an eiginit\.Dataset"):
        train_batched(group, (data.x_train, data.y_train), lrs=1e-3, seeds=0)


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
