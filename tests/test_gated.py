"""LSTM and GRU models of the engine: gradients against torch and finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest

from eiginit import adding_problem, fit
from eiginit.models.gated import GatedRNNModel, gated_init

CELLS = ["lstm", "gru"]


def _params(cell, d=2, H=5, o=1, R=2, seed=0, scheme="pytorch"):
    rngs = [np.random.default_rng(seed + r) for r in range(R)]
    return gated_init(cell, (d, H, o), scheme, rngs=rngs, dtype=np.float64,
                      t_max=8 if scheme == "chrono" else None)  # fmt: skip


def _batch(R=2, B=3, T=7, seed=5):
    rng = np.random.default_rng(seed)
    xs, ys = zip(*(adding_problem(B, T, rng=rng) for _ in range(R)), strict=True)
    return np.stack(xs), np.stack(ys)


@pytest.mark.parametrize("cell", CELLS)
def test_gradients_match_torch_autograd(cell):
    torch = pytest.importorskip("torch")
    model, params = _params(cell, scheme="keras" if cell == "lstm" else "pytorch")
    x, y = _batch()
    loss, grads = model.loss_and_gradients(params, x, y)
    for r in range(2):
        rnn = (torch.nn.LSTM if cell == "lstm" else torch.nn.GRU)(2, 5, batch_first=True)
        rnn = rnn.double()
        head = torch.nn.Linear(5, 1).double()
        with torch.no_grad():
            for p, a in zip((rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0,
                             head.weight, head.bias), params, strict=True):  # fmt: skip
                p.copy_(torch.from_numpy(a[r]))
        out, _ = rnn(torch.from_numpy(x[r]))
        pred = head(out[:, -1])
        tl = torch.mean((pred - torch.from_numpy(y[r])) ** 2)
        tl.backward()
        assert math.isclose(float(tl.detach()), loss[r], rel_tol=1e-12)
        torch_grads = [rnn.weight_ih_l0.grad, rnn.weight_hh_l0.grad, rnn.bias_ih_l0.grad,
                       rnn.bias_hh_l0.grad, head.weight.grad, head.bias.grad]  # fmt: skip
        for mine, theirs in zip(grads, torch_grads, strict=True):
            np.testing.assert_allclose(mine[r], theirs.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
def test_gradients_match_central_differences(cell):
    model, params = _params(cell, R=1, H=4)
    x, y = _batch(R=1, T=6)
    _, grads = model.loss_and_gradients(params, x, y)
    rng = np.random.default_rng(3)
    eps = 1e-6
    for k, p in enumerate(params):
        for _ in range(4):
            idx = tuple(int(rng.integers(0, s)) for s in p.shape)
            up = [q.copy() for q in params]
            down = [q.copy() for q in params]
            up[k][idx] += eps
            down[k][idx] -= eps
            numeric = (model.loss_and_gradients(up, x, y)[0][0]
                       - model.loss_and_gradients(down, x, y)[0][0]) / (2 * eps)  # fmt: skip
            assert abs(numeric - grads[k][idx]) <= 1e-7 + 1e-6 * abs(numeric), (k, idx)


@pytest.mark.parametrize("cell", CELLS)
def test_predict_and_loss_agree_with_the_training_pass(cell):
    model, params = _params(cell)
    x, y = adding_problem(4, 9, rng=np.random.default_rng(1))
    out = model.predict(params, x)
    assert out.shape == (2, 4, 1)
    both = np.broadcast_to(x, (2, *x.shape))
    loss, _ = model.loss_and_gradients(params, both, np.broadcast_to(y, (2, *y.shape)))
    np.testing.assert_allclose(model.loss(out, y), loss, rtol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
def test_replicas_of_a_fit_are_separate_runs(cell):
    model, params = _params(cell, R=3, H=4)
    rng = np.random.default_rng(2)
    data = (*adding_problem(64, 6, rng=rng), *adding_problem(16, 6, rng=rng))
    together = fit(model, params, data, lr=[1e-3, 3e-3, 1e-2], seeds=[4, 5, 6], epochs=2,
                   batch_size=16)  # fmt: skip
    for r, (lr, seed) in enumerate(((1e-3, 4), (3e-3, 5), (1e-2, 6))):
        alone = fit(model, [p[r : r + 1] for p in params], data, lr=lr, seeds=[seed], epochs=2,
                    batch_size=16)  # fmt: skip
        np.testing.assert_allclose(together.train_loss[r], alone.train_loss[0], rtol=1e-12)
        for a, b in zip(together.final_params, alone.final_params, strict=True):
            np.testing.assert_allclose(a[r], b[0], rtol=1e-10, atol=1e-14)


def test_the_initializations_follow_their_rules():
    H, T = 16, 50
    _, torch_p = _params("lstm", H=H, R=1)
    assert np.all(np.abs(np.concatenate([a.ravel() for a in torch_p])) <= 1 / math.sqrt(H))
    for cell, G in (("lstm", 4), ("gru", 3)):
        _, keras_p = _params(cell, H=H, R=1, scheme="keras")
        w_hh = keras_p[1][0]
        np.testing.assert_allclose(
            w_hh.T @ w_hh, np.eye(H), atol=1e-12
        )  # orthogonal over all gates
        blocks = w_hh.reshape(G, H, H)
        share = np.mean(np.linalg.svd(blocks, compute_uv=False) ** 2)
        assert share == pytest.approx(1 / G, rel=1e-12)  # each gate's block holds 1/G of it
        forget = keras_p[2][0, H : 2 * H]
        assert np.all(forget == (1.0 if cell == "lstm" else 0.0))
    _, chrono = gated_init("lstm", (2, H, 1), "chrono", rngs=[np.random.default_rng(0)],
                           t_max=T, dtype=np.float64)  # fmt: skip
    b_f, b_i = chrono[2][0, H : 2 * H], chrono[2][0, :H]
    assert np.all((b_f >= 0) & (b_f <= math.log(T - 1)))
    np.testing.assert_array_equal(b_i, -b_f)
    # the forget gate's time constant 1/(1 - sigma(b_f)) = 1 + e^{b_f} spans 2 .. T
    tau = 1 + np.exp(b_f)
    assert tau.min() >= 2
    assert tau.max() <= T


def test_a_replica_is_drawn_from_its_own_generator():
    _, both = gated_init("gru", (2, 4, 1), "keras",
                         rngs=[np.random.default_rng(1), np.random.default_rng(2)])  # fmt: skip
    _, one = gated_init("gru", (2, 4, 1), "keras", rngs=[np.random.default_rng(2)])
    for a, b in zip(both, one, strict=True):
        np.testing.assert_array_equal(a[1], b[0])


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: GatedRNNModel("rnn"), ValueError, "cell"),
        (lambda: gated_init("lstm", (2, 4, 1), "xavier", rngs=[np.random.default_rng()]),
         ValueError, "scheme"),
        (lambda: gated_init("gru", (2, 4, 1), "chrono", rngs=[np.random.default_rng()], t_max=9),
         ValueError, "LSTM"),
        (lambda: gated_init("lstm", (2, 4, 1), "chrono", rngs=[np.random.default_rng()]),
         ValueError, "t_max"),
        (lambda: gated_init("lstm", (2, 4, 1), "chrono", rngs=[np.random.default_rng()],
                            t_max=2), ValueError, "t_max"),
        (lambda: gated_init("lstm", (2, 0, 1), "keras", rngs=[np.random.default_rng()]),
         ValueError, "sizes"),
        (lambda: gated_init("lstm", (2, 4, 1), "keras", rngs=np.random.default_rng()),
         TypeError, "rngs"),
        (lambda: gated_init("lstm", (2, 4), "keras", rngs=[np.random.default_rng()]),
         TypeError, "sizes"),
    ],
)  # fmt: skip
def test_bad_input_is_refused(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("cell", CELLS)
def test_bad_shapes_are_refused(cell):
    model, params = _params(cell)
    x, y = _batch()
    with pytest.raises(ValueError, match="x must be"):
        model.loss_and_gradients(params, x[0], y)
    with pytest.raises(ValueError, match="x must be"):
        model.predict(params, x[..., :1][0])
    with pytest.raises(TypeError, match="params"):
        model.loss_and_gradients(params[:5], x, y)
    wrong = GatedRNNModel("gru" if cell == "lstm" else "lstm")
    with pytest.raises(ValueError, match="gates"):
        wrong.loss_and_gradients(params, x, y)


@pytest.mark.parametrize("cell", CELLS)
def test_targets_and_readout_of_the_wrong_shape_are_refused(cell):
    model, params = _params(cell)
    x, y = _batch()
    with pytest.raises(ValueError, match="y must hold one target row"):
        model.loss_and_gradients(params, x, np.concatenate([y, y], axis=2))  # two targets, o = 1
    bad = [p.copy() for p in params]
    bad[5] = np.zeros((2, 3))  # b_out of the wrong width
    with pytest.raises(ValueError, match="shapes"):
        model.loss_and_gradients(bad, x, y)
    with pytest.raises(TypeError, match="params"):
        model.loss_and_gradients([p.astype(np.int64) for p in params], x, y)


def test_gated_init_refuses_an_integer_dtype():
    with pytest.raises(ValueError, match="dtype"):
        gated_init("gru", (2, 4, 1), "keras", rngs=[np.random.default_rng(0)], dtype=np.int32)
