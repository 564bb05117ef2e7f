"""Bad input to the training study (review 2026-12-part-5-bad-input: H3, M1, M2, L11).

Each defect the review found in `eiginit.training.study` has a regression test: calls that used to
give a
silent wrong answer now raise, naming the argument; valid calls that used to fail now work.
"""

from __future__ import annotations

import numpy as np
import pytest

from eiginit import Dataset, MLPModel, build_contender, contenders, fit, run_cell
from eiginit.training.study import networks, streams


def toy(n_train=300, validation=True) -> Dataset:
    rng = np.random.default_rng(50)
    x = rng.standard_normal((400, 6))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    extra = {"x_val": x[300:350], "y_val": y[300:350]} if validation else {}
    return Dataset(x[:n_train], y[:n_train], x[350:], y[350:], 2, "toy", **extra)


def cell(data, **kw):
    args = {"depth": 3, "width": 8, "lr_grid": [1e-3, 1e-2], "sweep_seeds": [0],
            "seeds": [1, 2], "epochs": 2, "names": ["Kaiming", "LSUV"]}  # fmt: skip
    return run_cell(data, "relu", "adam", **{**args, **kw})


def test_h3_data_without_a_validation_split_is_refused():
    """It used to 'choose' the first rate for every contender and report test accuracies."""
    with pytest.raises(ValueError, match="no validation split"):
        cell(toy(validation=False))


@pytest.mark.parametrize("depth", [0, -3])
def test_m2_a_depth_below_one_is_refused(depth):
    """depth 0 and -3 used to train the network of depth 1."""
    with pytest.raises(ValueError, match=f"depth must be an integer >= 1, got {depth}"):
        cell(toy(), depth=depth)


@pytest.mark.parametrize(
    ("kw", "error", "match"),
    [
        ({"width": 0}, ValueError, "width must be"),
        ({"epochs": 0}, ValueError, "epochs must be"),
        ({"batch_size": 0}, ValueError, "batch_size must be"),
        ({"lr_grid": []}, ValueError, "lr_grid must hold at least two"),
        ({"lr_grid": [1e-3]}, ValueError, "lr_grid must hold at least two"),
        ({"lr_grid": [1e-3, -1.0]}, ValueError, "each learning rate of lr_grid"),
        ({"lr_grid": "0.01"}, TypeError, "lr_grid must be a sequence"),
        ({"sweep_seeds": [1]}, ValueError, "seeds must be fresh"),
        ({"seeds": [0, 0]}, ValueError, "seeds must not repeat"),
        ({"seeds": []}, ValueError, "seeds must hold at least one"),
        ({"seeds": [1, -1]}, ValueError, "each of seeds must be"),
        ({"names": ["nonexistent"]}, ValueError, "names must name contenders"),
        ({"names": []}, ValueError, "names must name contenders"),
        ({"names": "Kaiming"}, TypeError, "names must be a sequence"),
    ],
)
def test_m1_m2_arguments_are_checked_up_front(kw, error, match):
    with pytest.raises(error, match=match):
        cell(toy(), **kw)


def test_optimizer_and_data_are_checked():
    with pytest.raises(ValueError, match="optimizer must be 'adam' or 'sgd'"):
        run_cell(toy(), "relu", "rmsprop", depth=2, width=4, lr_grid=[1e-3, 1e-2],
                 sweep_seeds=[0], seeds=[1], epochs=1)  # fmt: skip
    with pytest.raises(TypeError, match=r"data must be an eiginit\.Dataset"):
        run_cell((1, 2), "relu", "adam", depth=2, width=4, lr_grid=[1e-3, 1e-2],
                 sweep_seeds=[0], seeds=[1], epochs=1)  # fmt: skip


def test_final_seeds_must_be_fresh():
    """The final runs used to reuse the sweep's seeds, which flattered them (chapter 8)."""
    with pytest.raises(ValueError, match=r"seeds must be fresh.*\[0\] are in both"):
        cell(toy(), seeds=[0, 1])


def test_m1_fewer_than_256_training_rows_work():
    """LSUV's batch is every training row when there are fewer than 256."""
    data = toy(n_train=200)
    result = cell(data)
    assert result.test.shape == (2, 2)
    assert result.lsuv_touched[1, 0] == 3
    # The same network as a lone fit run: seed 2 of LSUV at its chosen rate.
    lsuv = next(c for c in contenders("relu") if c.name == "LSUV")
    nets, _ = networks(data, "relu", [(lsuv, 2)], [6, 8, 8, 2])
    model, params = MLPModel.from_networks(nets)
    alone = fit(model, params, data, lr=result.chosen_lr[1], epochs=2, batch_size=64,
                seeds=[streams(lsuv, 2)[2]])  # fmt: skip
    np.testing.assert_array_equal(alone.val_metric[0], result.val_curves[1, 1])
    assert alone.best_value[0] == result.val[1, 1]


def test_l11_build_contender_checks_its_arguments():
    x = np.random.default_rng(0).standard_normal((16, 4))
    kaiming = contenders("relu")[2]
    with pytest.raises(TypeError, match=r"contender must be an eiginit\.Contender"):
        build_contender(None, [4, 8, 2], "relu", seed=0, x_batch=x)
    with pytest.raises(TypeError, match="seed must be an integer"):
        build_contender(kaiming, [4, 8, 2], "relu", seed=None, x_batch=x)
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        build_contender(kaiming, [4, 8, 2], "relu", seed=-1, x_batch=x)
