"""The one training engine: replicas equal separate runs, seeds, divergence, optimizers, checks."""

import functools

import numpy as np
import pytest

from eiginit import initializers as ini
from eiginit.datasets import Dataset
from eiginit.models.convolution import CNN1d, delta_orthogonal
from eiginit.models.network import MLP
from eiginit.models.parametrization import parametrize
from eiginit.models.recurrent import ElmanRNN, adding_problem
from eiginit.models.residual import residual_classifier
from eiginit.theory.curvature import (
    flatten_parameters,
    hessian_top_eigenvalue,
    hessian_vector_product,
)
from eiginit.training.engine import (
    CNNModel,
    FitResult,
    MLPModel,
    Model,
    MuPModel,
    Optimizer,
    ResidualModel,
    RNNModel,
    fit,
    replica_sharpness,
)


def blobs(n=120, classes=3, features=4, seed=0):
    """A small classification problem with a train / validation / test split."""
    rng = np.random.default_rng(seed)
    centres = 2.0 * rng.standard_normal((classes, features))
    y = rng.integers(0, classes, n)
    x = centres[y] + rng.standard_normal((n, features))
    a, b = n // 2, 3 * n // 4
    return Dataset(x[:a], y[:a], x[b:], y[b:], classes, "blobs", x_val=x[a:b], y_val=y[a:b])


def mlps(k, sizes=(4, 16, 16, 3), activation="tanh"):
    return [
        MLP.create(sizes, activation, ini.lecun_normal, rng=np.random.default_rng(s))
        for s in range(k)
    ]


def select(params, rows):
    return [np.ascontiguousarray(p[rows]) for p in params]


def assert_replicas_equal_separate_runs(model, params, data, alone_model=None, **options):
    """R replicas trained together equal R one-replica runs with the same seeds (1e-12)."""
    R = params[0].shape[0]
    lr = np.asarray(options.pop("lr"), dtype=float)
    seeds = options.pop("seeds")
    mults = options.pop("layer_multipliers", None)
    together = fit(model, params, data, lr=lr, seeds=seeds, layer_multipliers=mults, **options)
    assert not together.diverged.any()
    for r in range(R):
        single = model if alone_model is None else alone_model(r)
        alone = fit(single, select(params, [r]), data, lr=lr[r : r + 1], seeds=[seeds[r]],
                    layer_multipliers=mults, **options)  # fmt: skip
        np.testing.assert_allclose(together.train_loss[r], alone.train_loss[0], rtol=1e-12)
        np.testing.assert_allclose(together.val_metric[r], alone.val_metric[0], rtol=1e-12)
        assert together.best_epoch[r] == alone.best_epoch[0]
        for a, b in zip(together.final_params, alone.final_params, strict=True):
            np.testing.assert_allclose(a[r], b[0], rtol=1e-12, atol=1e-14)
        for a, b in zip(together.params, alone.params, strict=True):
            np.testing.assert_allclose(a[r], b[0], rtol=1e-12, atol=1e-14)
    return together


# ----------------------------------------------------------------------------- replicas
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_mlp_replicas_equal_separate_runs(optimizer):
    model, params = MLPModel.from_networks(mlps(3), dtype=np.float64)
    result = assert_replicas_equal_separate_runs(
        model, params, blobs(), lr=[1e-3, 1e-2, 3e-2], seeds=[4, 5, 6], optimizer=optimizer,
        epochs=3, batch_size=16,
    )  # fmt: skip
    assert isinstance(model, Model)
    assert isinstance(result, FitResult)
    assert result.train_loss.shape == (3, 4)


def test_mup_replicas_equal_separate_runs_with_layer_multipliers():
    scales = parametrize([4, 32, 32, 3], "mup", base_width=8)
    model, params = MuPModel.create(scales, replicas=3, rng=np.random.default_rng(0),
                                    dtype=np.float64)  # fmt: skip
    assert model.default_multipliers.shape == (3,)
    assert len(set(model.default_multipliers.tolist())) > 1  # muP's rates differ by layer
    assert_replicas_equal_separate_runs(
        model, params, blobs(), lr=[0.05, 0.1, 0.2], seeds=[1, 2, 3], optimizer="sgd",
        momentum=0.0, epochs=2, batch_size=20, layer_multipliers=model.default_multipliers,
        drop_last=True,
    )  # fmt: skip


def test_mup_model_applies_its_layer_multipliers_by_default():
    scales = parametrize([4, 32, 3], "mup", base_width=8)
    model, params = MuPModel.create(scales, replicas=2, rng=np.random.default_rng(0),
                                    dtype=np.float64)  # fmt: skip
    run = functools.partial(fit, model, params, blobs(), lr=0.1, seeds=[0, 1], optimizer="sgd",
                            epochs=1)  # fmt: skip
    default, explicit, flat = (
        run(),
        run(layer_multipliers=model.default_multipliers),
        run(layer_multipliers=np.ones(2)),
    )
    np.testing.assert_array_equal(default.multipliers, explicit.multipliers)
    np.testing.assert_allclose(default.final_params[0], explicit.final_params[0], rtol=1e-12)
    assert not np.allclose(default.final_params[0], flat.final_params[0])


def adding_data(n=96, steps=6, seed=0):
    rng = np.random.default_rng(seed)
    x, y = adding_problem(n, steps, rng=rng)
    xv, yv = adding_problem(32, steps, rng=rng)
    return x, y, xv, yv


def test_rnn_replicas_equal_separate_runs_with_clipping():
    rng = np.random.default_rng(0)
    net = ElmanRNN.create(np.stack([0.9 * np.eye(8), 1.2 * np.eye(8), 0.5 * np.eye(8)]), 2, 1,
                          rng=rng)  # fmt: skip
    model, params = RNNModel.from_network(net, dtype=np.float64)
    result = assert_replicas_equal_separate_runs(
        model, params, adding_data(), lr=[0.05, 0.2, 0.1], seeds=[0, 1, 2], optimizer="sgd",
        epochs=3, batch_size=16, clip=0.5, record_steps=True,
    )  # fmt: skip
    assert result.metric == "loss"
    assert np.nanmax(result.grad_norm) > 0.5  # clipping had something to do


def test_cnn_replicas_equal_separate_runs():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((90, 8))
    y = (x[:, :4].sum(1) > x[:, 4:].sum(1)).astype(int)
    net = CNN1d.create(length=8, depth=2, channels=4, width=3, n_classes=2, init=delta_orthogonal,
                       replicas=2, rng=rng, pool_after=(1,), dtype=np.float64)  # fmt: skip
    model, params = CNNModel.from_network(net, dtype=np.float64)
    assert_replicas_equal_separate_runs(
        model, params, (x[:60], y[:60], x[60:], y[60:]), lr=[1e-2, 3e-2], seeds=[5, 6],
        epochs=2, batch_size=16,
    )  # fmt: skip


def test_residual_replicas_equal_separate_runs():
    net = residual_classifier(["fixup", "rezero", "scaled"], inputs=4, classes=3, width=8,
                              depth=2, rng=np.random.default_rng(0), dtype=np.float64)  # fmt: skip
    model, params = ResidualModel.from_network(net, dtype=np.float64)
    alone = lambda r: ResidualModel(model.template, model.train_alpha[[r]])  # noqa: E731
    result = assert_replicas_equal_separate_runs(
        model, params, blobs(), alone, lr=[1e-2, 1e-2, 3e-3], seeds=[0, 1, 2], epochs=2,
        batch_size=16,
    )  # fmt: skip
    alpha = result.final_params[3]
    np.testing.assert_array_equal(alpha[[0, 2]], params[3][[0, 2]])  # only ReZero's alpha moves
    assert np.any(alpha[1] != params[3][1])


# ----------------------------------------------------------------------------- seeds
def test_independent_seeds_draw_independent_minibatch_orders():
    model, params = MLPModel.from_networks(mlps(1) * 3, dtype=np.float64)  # identical replicas
    run = functools.partial(fit, model, params, blobs(), lr=1e-2, epochs=1, batch_size=8,
                            record_steps=True)  # fmt: skip
    same = run(seeds=[3, 3, 4])
    np.testing.assert_array_equal(same.step_loss[0], same.step_loss[1])
    assert not np.allclose(same.step_loss[0], same.step_loss[2])
    spawned = run(seeds=11)  # one root seed: three different child seeds
    assert len(set(spawned.seeds)) == 3
    assert not np.allclose(spawned.step_loss[0], spawned.step_loss[1])


# ----------------------------------------------------------------------------- divergence
def test_a_diverging_replica_is_marked_frozen_and_kept_while_others_continue():
    model, params = MLPModel.from_networks(mlps(3, activation="relu"), dtype=np.float64)
    data = blobs()
    run = functools.partial(fit, model, params, data, lr=[1e-2, 1e9, 5e-2], seeds=[0, 1, 2],
                            optimizer="sgd", batch_size=16, diverge_above=1e3)  # fmt: skip
    short, long = run(epochs=2), run(epochs=4)
    assert short.diverged.tolist() == [False, True, False]
    assert short.diverged_step[1] >= 1
    assert np.isnan(long.train_loss[1, -1])
    assert np.isfinite(long.train_loss[[0, 2], -1]).all()
    for a, b in zip(short.final_params, long.final_params, strict=True):
        np.testing.assert_array_equal(a[1], b[1])  # frozen: two more epochs did not move it
    healthy = fit(model, select(params, [0, 2]), data, lr=[1e-2, 5e-2], seeds=[0, 2],
                  optimizer="sgd", batch_size=16, epochs=4)  # fmt: skip
    np.testing.assert_allclose(long.train_loss[[0, 2]], healthy.train_loss, rtol=1e-12)


# ----------------------------------------------------------------------------- optimizers
def test_adam_matches_kingma_ba_algorithm_1():
    rng = np.random.default_rng(0)
    theta = [rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3))]
    grads = [[rng.standard_normal(p.shape) for p in theta] for _ in range(3)]
    rates = np.array([[0.1, 0.2], [0.01, 0.03]])
    b1, b2, eps = 0.8, 0.99, 1e-6
    work = [p.copy() for p in theta]
    opt = Optimizer("adam", work, rates, betas=(b1, b2), eps=eps)
    ref = [p.copy() for p in theta]
    m = [np.zeros_like(p) for p in theta]
    v = [np.zeros_like(p) for p in theta]
    for t, gs in enumerate(grads, 1):
        opt.step(work, [g.copy() for g in gs])
        for i, g in enumerate(gs):  # Algorithm 1, line by line
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g**2
            m_hat, v_hat = m[i] / (1 - b1**t), v[i] / (1 - b2**t)
            lr = rates[:, i].reshape((2,) + (1,) * (g.ndim - 1))
            ref[i] = ref[i] - lr * m_hat / (np.sqrt(v_hat) + eps)
    for a, b in zip(work, ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_sgd_momentum_matches_the_hand_written_step():
    rng = np.random.default_rng(1)
    theta = [rng.standard_normal((3, 5))]
    grads = [rng.standard_normal((3, 5)) for _ in range(4)]
    rates = np.array([[0.1], [0.5], [0.0]])
    work = [theta[0].copy()]
    opt = Optimizer("sgd", work, rates, momentum=0.7)
    ref, vel = theta[0].copy(), np.zeros((3, 5))
    for g in grads:
        opt.step(work, [g.copy()])
        vel = 0.7 * vel + g
        ref = ref - rates[:, :1] * vel
    np.testing.assert_allclose(work[0], ref, rtol=1e-12)
    np.testing.assert_array_equal(work[0][2], theta[0][2])  # rate 0: never moves


def test_full_batch_sgd_is_gradient_descent():
    model, params = MLPModel.from_networks(mlps(2), dtype=np.float64)
    data = blobs()
    result = fit(model, params, data, lr=[0.1, 0.3], seeds=[0, 1], optimizer="sgd", momentum=0.0,
                 epochs=3, full_batch=True)  # fmt: skip
    work = [p.copy() for p in params]
    lr = np.array([0.1, 0.3])
    for _ in range(3):
        x = np.broadcast_to(data.x_train, (2, *data.x_train.shape))
        y = np.broadcast_to(data.y_train, (2, data.y_train.shape[0]))
        _, grads = model.loss_and_gradients(work, x, y)
        for p, g in zip(work, grads, strict=True):
            p -= lr.reshape((2,) + (1,) * (p.ndim - 1)) * g
    for a, b in zip(result.final_params, work, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


# ----------------------------------------------------------------------------- early stopping
def test_early_stopping_returns_the_best_epochs_parameters():
    model, params = MLPModel.from_networks(mlps(3), dtype=np.float64)
    data = blobs()
    lr, seeds = [3e-2, 1e-1, 3e-1], [0, 1, 2]
    result = fit(model, params, data, lr=lr, seeds=seeds, epochs=8, batch_size=8, patience=2)
    np.testing.assert_array_equal(result.best_value, np.nanmax(result.val_metric, axis=1))
    assert (result.best_epoch <= result.epochs_run).all()
    for r in range(3):
        if result.best_epoch[r] == 0:
            expected = select(params, [r])
        else:
            rerun = fit(model, select(params, [r]), data, lr=lr[r], seeds=[seeds[r]],
                        epochs=int(result.best_epoch[r]), batch_size=8)  # fmt: skip
            expected = rerun.final_params
        for a, b in zip(result.params, expected, strict=True):
            np.testing.assert_allclose(a[r], b[0], rtol=1e-12, atol=1e-14)


def test_monitor_is_recorded_every_epoch():
    model, params = MLPModel.from_networks(mlps(2), dtype=np.float64)
    result = fit(model, params, blobs(), lr=1e-2, seeds=[0, 1], epochs=2,
                 monitor=lambda p: {"norm": np.sqrt((p[0] ** 2).sum(axis=(1, 2)))})  # fmt: skip
    assert result.monitored["norm"].shape == (2, 3)
    assert np.all(result.monitored["norm"] > 0)


def test_float32_by_default_in_the_adapters_and_kept_by_fit():
    net = residual_classifier(["kaiming"], inputs=4, classes=3, width=8, depth=2,
                              rng=np.random.default_rng(0), dtype=np.float64)  # fmt: skip
    model, params = ResidualModel.from_network(net)
    result = fit(model, params, blobs(), lr=1e-3, seeds=[0], epochs=1)
    assert all(p.dtype == np.float32 for p in result.params)
    model, params = MLPModel.from_networks(mlps(2))  # float64 networks, float32 parameters
    assert all(p.dtype == np.float32 and p.flags.c_contiguous for p in params)
    assert fit(model, params, blobs(), lr=1e-3, seeds=[0, 1], epochs=1).train_loss.shape == (2, 2)
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        MLPModel.from_networks(mlps(1), dtype=np.int64)


# ----------------------------------------------------------------------------- checks
@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"model": object()}, TypeError, "model must have the methods"),
        ({"params": np.zeros((2, 3))}, TypeError, "params must be a non-empty list"),
        ({"data": [1, 2]}, TypeError, "data must be an eiginit.Dataset"),
        ({"lr": -1.0}, ValueError, "lr must be > 0"),
        ({"lr": [1e-2, 1e-2, 1e-2]}, ValueError, "lr must be one number or 2"),
        ({"seeds": [1]}, ValueError, "seeds must be an int or a sequence of 2"),
        ({"seeds": [1, -2]}, TypeError, "seeds must hold non-negative integers"),
        ({"seeds": True}, TypeError, "seeds must be an int"),
        ({"optimizer": "rmsprop"}, ValueError, "optimizer must be 'adam' or 'sgd'"),
        ({"epochs": 0}, ValueError, "epochs must be an integer >= 1"),
        ({"batch_size": 2.5}, TypeError, "batch_size must be an integer"),
        ({"momentum": 1.0}, ValueError, "momentum must be in"),
        ({"betas": (0.9, 1.0)}, ValueError, "beta2 must be"),
        ({"clip": 0.0}, ValueError, "clip must be a finite number > 0"),
        ({"metric": "f1"}, ValueError, "metric must be 'accuracy' or 'loss'"),
        ({"layer_multipliers": [1.0, 2.0]}, ValueError, "layer_multipliers must have shape"),
        ({"layer_multipliers": "mup"}, TypeError, "layer_multipliers must be numbers"),
        ({"full_batch": "yes"}, TypeError, "full_batch must be True or False"),
        ({"monitor": 3}, TypeError, "monitor must be callable"),
        ({"patience": 0}, ValueError, "patience must be an integer >= 1"),
    ],
)
def test_fit_refuses_bad_input_by_name(change, error, match):
    model, params = MLPModel.from_networks(mlps(2), dtype=np.float64)
    args = {"model": model, "params": params, "data": blobs(), "lr": 1e-2, "seeds": [0, 1]}
    args.update(change)
    with pytest.raises(error, match=match):
        fit(args.pop("model"), args.pop("params"), args.pop("data"), **args)


def test_fit_refuses_data_that_does_not_fit():
    model, params = MLPModel.from_networks(mlps(2), dtype=np.float64)
    x = np.ones((10, 4))
    with pytest.raises(ValueError, match=r"data.x_train must be non-empty and finite"):
        fit(model, params, (x * np.nan, np.zeros(10, int)), lr=1e-2, seeds=[0, 1])
    with pytest.raises(TypeError, match=r"data.y_train must be an array"):
        fit(model, params, (x, np.zeros(9, int)), lr=1e-2, seeds=[0, 1])
    with pytest.raises(ValueError, match=r"needs integer labels"):
        fit(model, params, (x, np.zeros(10)), lr=1e-2, seeds=[0, 1], metric="accuracy")
    with pytest.raises(ValueError, match=r"data.y_train must hold labels below the model's 3"):
        fit(model, params, (x, np.full(10, 3)), lr=1e-2, seeds=[0, 1])
    with pytest.raises(ValueError, match=r"batch_size must be at most 10 with drop_last"):
        fit(model, params, (x, np.zeros(10, int)), lr=1e-2, seeds=[0, 1], batch_size=11,
            drop_last=True)  # fmt: skip
    mixed = [params[0].astype(np.float32), *params[1:]]
    with pytest.raises(ValueError, match=r"params\[1\] must have the replica axis first"):
        fit(model, mixed, (x, np.zeros(10, int)), lr=1e-2, seeds=[0, 1])


def test_adapters_refuse_other_networks():
    with pytest.raises(TypeError, match=r"nets must be a list of eiginit.MLP"):
        MLPModel.from_networks(mlps(1)[0], dtype=np.float64)
    with pytest.raises(ValueError, match=r"nets must share one architecture"):
        MLPModel.from_networks([*mlps(1), *mlps(1, sizes=(4, 8, 3))])
    with pytest.raises(TypeError, match=r"net must be an eiginit.ElmanRNN"):
        RNNModel.from_network(mlps(1)[0])
    with pytest.raises(TypeError, match=r"net must be an eiginit.CNN1d"):
        CNNModel.from_network(None)
    with pytest.raises(TypeError, match=r"net must be an eiginit.ResidualClassifier"):
        ResidualModel.from_network("fixup")
    with pytest.raises(ValueError, match=r"rates must be an array of shape"):
        Optimizer("sgd", [np.zeros((2, 3))], np.ones((3, 1)))


# ----------------------------------------------------------------------------- curvature
@pytest.mark.parametrize("activation", ["tanh", "relu", "gelu", "silu"])
def test_mlp_hvp_matches_the_curvature_module_and_finite_differences(activation):
    group = mlps(2, sizes=(4, 6, 5, 3), activation=activation)
    model, params = MLPModel.from_networks(group, dtype=np.float64)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 7, 4))
    y = rng.integers(0, 3, (2, 7))
    vectors = [rng.standard_normal(p.shape) for p in params]
    hv = model.hvp(params, x, y, vectors)
    depth = len(model.activations)
    for r in range(2):
        v_r = np.concatenate(
            [part for i in range(depth) for part in (vectors[i][r].ravel(), vectors[depth + i][r])]
        )
        expected = hessian_vector_product(group[r], x[r], y[r], v_r)
        got = np.concatenate(
            [part for i in range(depth) for part in (hv[i][r].ravel(), hv[depth + i][r])]
        )
        assert flatten_parameters(group[r]).shape == got.shape
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    h = 1e-5  # central difference of the gradients along v
    pairs = list(zip(params, vectors, strict=True))
    plus = model.loss_and_gradients([p + h * v for p, v in pairs], x, y)[1]
    minus = model.loss_and_gradients([p - h * v for p, v in pairs], x, y)[1]
    for a, b, c in zip(hv, plus, minus, strict=True):
        np.testing.assert_allclose(a, (b - c) / (2 * h), rtol=1e-5, atol=1e-7)


def test_fit_leaves_the_given_parameters_alone():
    model, params = MLPModel.from_networks(mlps(2), dtype=np.float64)
    before = [p.copy() for p in params]
    fit(model, params, blobs(), lr=1e-1, seeds=[0, 1], epochs=2)
    for a, b in zip(params, before, strict=True):
        np.testing.assert_array_equal(a, b)


def test_non_finite_gradients_mark_a_replica_without_a_loss_limit():
    model, params = MLPModel.from_networks(mlps(2, activation="relu"), dtype=np.float64)
    run = functools.partial(fit, model, params, blobs(), lr=[1e-2, 1e200], seeds=[0, 1],
                            optimizer="sgd", batch_size=16, record_steps=True)  # fmt: skip
    short, long = run(epochs=2), run(epochs=3)
    assert short.diverged.tolist() == [False, True]
    step = short.diverged_step[1]
    assert np.isnan(short.step_loss[1, step - 1 :]).all()
    assert np.isfinite(short.step_loss[0]).all()
    for a, b in zip(short.final_params, long.final_params, strict=True):
        np.testing.assert_array_equal(a[1], b[1])


def test_regression_selects_the_epoch_of_lowest_validation_loss():
    net = ElmanRNN.create(np.stack([0.5 * np.eye(6)] * 2), 2, 1, rng=np.random.default_rng(2))
    model, params = RNNModel.from_network(net, dtype=np.float64)
    result = fit(model, params, adding_data(), lr=[0.05, 0.5], seeds=[0, 1], optimizer="sgd",
                 epochs=4, batch_size=16, clip=1.0)  # fmt: skip
    assert result.metric == "loss"
    np.testing.assert_array_equal(result.best_value, np.nanmin(result.val_metric, axis=1))
    expected = np.nanargmin(result.val_metric, axis=1)
    np.testing.assert_array_equal(result.best_epoch, expected)


def test_replica_sharpness_matches_power_iteration_of_the_curvature_module():
    group = mlps(2, sizes=(4, 6, 3), activation="tanh")
    model, params = MLPModel.from_networks(group, dtype=np.float64)
    data = blobs()
    x, y = data.x_train[:20], data.y_train[:20]
    got = replica_sharpness(model, params, x, y, rng=np.random.default_rng(0), iterations=300)
    for r in range(2):
        ref = hessian_top_eigenvalue(group[r], x, y, rng=np.random.default_rng(1), tol=1e-8,
                                     max_iter=2000)  # fmt: skip
        np.testing.assert_allclose(got[r], ref.eigenvalue, rtol=1e-6)
    sharp = lambda p: {"sharpness": replica_sharpness(model, p, x, y, rng=np.random.default_rng(0))}  # noqa: E731
    result = fit(model, params, data, lr=0.1, seeds=[0, 1], optimizer="sgd", momentum=0.0,
                 full_batch=True, epochs=2, monitor=sharp)  # fmt: skip
    assert result.monitored["sharpness"].shape == (2, 3)
    with pytest.raises(TypeError, match="model must have an hvp"):
        replica_sharpness(object(), params, x, y, rng=np.random.default_rng(0))


def test_mlp_gradients_are_fresh_arrays_and_its_buffers_follow_the_shapes():
    """loss_and_gradients reuses work buffers between calls: what it returns must survive the
    next call, and a model called with other batch sizes or replica counts must give what a new
    model gives, bit for bit."""
    model, params = MLPModel.from_networks(mlps(3, activation="relu"), dtype=np.float64)
    rng = np.random.default_rng(0)
    x1, x2 = rng.standard_normal((3, 5, 4)), rng.standard_normal((3, 7, 4))
    y1, y2 = rng.integers(0, 3, (3, 5)), rng.integers(0, 3, (3, 7))
    _, grads1 = model.loss_and_gradients(params, x1, y1)
    kept = [g.copy() for g in grads1]
    for x, y, rows in ((x2, y2, [0, 1, 2]), (x1, y1, [1]), (x2, y2, [0, 2])):
        loss, grads = model.loss_and_gradients(select(params, rows), x[rows], y[rows])
        fresh_loss, fresh = MLPModel(model.activations).loss_and_gradients(
            select(params, rows), x[rows], y[rows]
        )
        np.testing.assert_array_equal(loss, fresh_loss)
        for g, f in zip(grads, fresh, strict=True):
            np.testing.assert_array_equal(g, f)
    for g, k in zip(grads1, kept, strict=True):
        np.testing.assert_array_equal(g, k)
    # and predict's forward pass (activations in place) is _forward's
    xs, _ = model._forward(params, x1)
    np.testing.assert_allclose(model.predict(params, x1[0])[0], xs[-1][0], rtol=1e-12)
