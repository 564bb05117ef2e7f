"""The comparison protocol's seed count, rate choice and trial runner."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from scipy import stats

from eiginit import MLP, fit, kaiming_normal
from eiginit.training.engine import MLPModel
from eiginit.training.protocol import (
    Contender,
    _order_seed,
    choose_rate,
    resolvable_difference,
    run_trial,
    seeds_needed,
    verdict_table,
    welch,
)


# ----------------------------------------------------------------------------- seeds_needed
def test_seeds_needed_matches_the_normal_formula_from_above():
    for ratio in (0.5, 1.0, 2.0):
        z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
        normal = 2 * z * z * ratio**2
        n = seeds_needed(ratio, 1.0)
        assert normal <= n <= normal + 3  # Student's quantiles add a seed or two


def test_seeds_needed_is_the_smallest_count_that_satisfies_the_formula():
    n = seeds_needed(1.3, 1.0, comparisons=4)
    for m, ok in ((n, True), (n - 1, False)):
        df = 2 * m - 2
        t = stats.t.ppf(1 - 0.05 / 8, df) + stats.t.ppf(0.8, df)
        assert bool(m >= 2 * t * t * 1.3**2) is ok


def test_seeds_needed_gives_the_promised_power_in_simulation():
    rng = np.random.default_rng(0)
    n = seeds_needed(1.0, 1.0, comparisons=3)
    for m, low, high in ((n, 0.78, 0.90), (max(n // 2, 3), 0.0, 0.7)):
        hits = 0
        for _ in range(600):
            w = welch(rng.normal(1.0, 1.0, m), rng.normal(0.0, 1.0, m))
            hits += w.p_value <= 0.05 / 3
        assert low <= hits / 600 <= high, (m, hits / 600)


def test_seeds_needed_grows_with_the_family_and_the_noise():
    assert seeds_needed(1, 1, comparisons=10) > seeds_needed(1, 1, comparisons=2)
    assert seeds_needed(2, 1) > seeds_needed(1, 1)
    assert seeds_needed(0.0, 1.0) == 3


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"spread": -1.0, "difference": 1.0}, ValueError, "spread"),
        ({"spread": 1.0, "difference": 0.0}, ValueError, "difference"),
        ({"spread": float("nan"), "difference": 1.0}, ValueError, "spread"),
        ({"spread": 1.0, "difference": 1.0, "comparisons": 0}, ValueError, "comparisons"),
        ({"spread": 1.0, "difference": 1.0, "power": 1.0}, ValueError, "power"),
        ({"spread": 1.0, "difference": 1.0, "alpha": 2.0}, ValueError, "alpha"),
        ({"spread": 1e6, "difference": 1.0}, ValueError, "100000"),
    ],
)
def test_seeds_needed_refuses_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        seeds_needed(**kwargs)


# ----------------------------------------------------------------------------- choose_rate
def _peak(at: float, seeds: int = 3):
    calls = []

    def evaluate(rates):
        calls.append(list(rates))
        r = np.asarray(rates)[:, None]
        return np.broadcast_to(-(np.log10(r / at) ** 2), (len(rates), seeds)).copy()

    return evaluate, calls


def test_choose_rate_inside_the_grid_does_not_widen():
    evaluate, calls = _peak(3e-3)
    c = choose_rate(evaluate, [1e-2, 1e-3, 3e-3])
    assert c.chosen == 3e-3
    assert c.widened == 0
    assert not c.on_edge
    assert c.grid == (1e-3, 3e-3, 1e-2)
    assert len(calls) == 1


@pytest.mark.parametrize(("at", "edge"), [(1e-5, 0), (1.0, -1)])
def test_choose_rate_widens_past_either_edge_and_reports_a_choice_still_on_it(at, edge):
    evaluate, calls = _peak(at)
    c = choose_rate(evaluate, [1e-3, 1e-2], max_widen=2)
    assert c.widened == 2
    assert c.on_edge
    assert len(c.grid) == 4
    assert c.chosen == c.grid[edge]
    assert all(len(call) == 1 for call in calls[1:])  # only the new rate is trained
    assert math.isclose(c.grid[1] / c.grid[0], 10.0)
    assert math.isclose(c.grid[-1] / c.grid[-2], 10)


def test_choose_rate_counts_a_diverged_run_as_the_worst():
    def evaluate(rates):
        out = np.array([[50.0, 52.0 + 100 * r] if r < 0.05 else [90.0, np.nan] for r in rates])
        return out

    c = choose_rate(evaluate, [0.01, 0.02, 0.1], max_widen=0)
    assert c.chosen == 0.02
    assert np.isnan(c.scores[-1, 1])


def test_choose_rate_for_a_loss_picks_the_smallest():
    c = choose_rate(lambda rates: np.array([[abs(np.log10(r) + 2)] for r in rates]),
                    [1e-3, 1e-2, 1e-1], higher_is_better=False)  # fmt: skip
    assert c.chosen == 1e-2


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((None, [1e-3]), {}, TypeError, "evaluate"),
        ((lambda r: r, "0.1"), {}, TypeError, "grid"),
        ((lambda r: r, []), {}, ValueError, "at least one"),
        ((lambda r: r, [1e-3, 1e-3]), {}, ValueError, "repeat"),
        ((lambda r: r, [-1e-3]), {}, ValueError, "rate"),
        ((lambda r: np.zeros(len(r)), [1e-3]), {}, ValueError, "shape"),
        ((lambda r: np.zeros((len(r), 1)), [1e-3]), {"max_widen": -1}, ValueError, "max_widen"),
    ],
)
def test_choose_rate_refuses_bad_input(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        choose_rate(*args, **kwargs)


# ----------------------------------------------------------------------------- run_trial
def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((360, 4))
    y = ((x[:, 0] + 0.5 * x[:, 1]) > 0).astype(np.int64)
    return x[:200], y[:200], x[200:280], y[200:280], x[280:], y[280:]


def _contender(name: str, gain: float = 1.0) -> Contender:
    def build(rngs):
        init = functools.partial(kaiming_normal, nonlinearity="relu")
        nets = [MLP.create([4, 8, 2], "relu", init, rng=g) for g in rngs]
        for net in nets:
            for w in net.weights:
                w *= gain
        return MLPModel.from_networks(nets, dtype=np.float64)

    return Contender(name, build)


OPTIONS = {"epochs": 3, "batch_size": 32}


@pytest.fixture(scope="module")
def trial():
    return run_trial([_contender("a"), _contender("b", 0.1)], _data(), grid=[1e-2, 1e-1],
                     sweep_seeds=2, seeds=4, seed=7, **OPTIONS)  # fmt: skip


def test_run_trial_is_reproducible_and_scores_on_test(trial):
    again = run_trial([_contender("a"), _contender("b", 0.1)], _data(), grid=[1e-2, 1e-1],
                      sweep_seeds=2, seeds=4, seed=7, **OPTIONS)  # fmt: skip
    for name in ("a", "b"):
        np.testing.assert_array_equal(trial.scores[name], again.scores[name])
        assert trial.scores[name].shape == (4,)
    assert trial.split == "test"
    assert trial.metric == "accuracy"
    assert np.all((trial.scores["a"] >= 0) & (trial.scores["a"] <= 100))


def test_a_contenders_runs_do_not_depend_on_the_others(trial):
    alone = run_trial([_contender("b", 0.1)], _data(), grid=[1e-2, 1e-1], sweep_seeds=2,
                      seeds=4, seed=7, **OPTIONS)  # fmt: skip
    np.testing.assert_array_equal(alone.scores["b"], trial.scores["b"])
    other = run_trial([_contender("b", 0.1)], _data(), grid=[1e-2, 1e-1], sweep_seeds=2,
                      seeds=4, seed=8, **OPTIONS)  # fmt: skip
    assert not np.array_equal(other.results["b"].params[0], trial.results["b"].params[0])


def test_final_seeds_are_fresh_and_independent(trial):
    result = trial.results["a"]
    first_layers = [result.final_params[0][r] for r in range(4)]
    assert len({w.tobytes() for w in first_layers}) == 4
    assert len(set(result.seeds)) == 4
    sweep_orders = {_order_seed(7, "a", 0, j) for j in range(2)}
    assert sweep_orders.isdisjoint(result.seeds)  # no final run reuses a sweep's order


def test_a_final_replica_is_the_run_of_that_replica_alone(trial):
    result = trial.results["a"]
    model, params = _contender("a").build([np.random.default_rng(s) for s in (11, 12)])
    both = fit(model, params, _data()[:4], lr=0.05, seeds=[result.seeds[0], result.seeds[1]],
               **OPTIONS)  # fmt: skip
    one = fit(model, [p[1:] for p in params], _data()[:4], lr=0.05, seeds=[result.seeds[1]],
              **OPTIONS)  # fmt: skip
    np.testing.assert_allclose(both.train_loss[1], one.train_loss[0], rtol=1e-12)


def test_verdicts_and_tables(trial):
    calls = trial.verdicts({"a vs b": ("a", "b"), "b vs a": ("b", "a")})
    assert calls["a vs b"].family == 2
    assert calls["a vs b"].welch.difference == pytest.approx(-calls["b vs a"].welch.difference)
    html = verdict_table(calls)
    assert html.count("<tr>") == 3
    assert "Holm-adjusted p (2 comparisons)" in html
    table = trial.table()
    assert table.count("<tr>") == 3
    assert "test accuracy (%)" in table
    assert trial.pilot_spread() >= 0
    with pytest.raises(ValueError, match="names 'c'"):
        trial.verdicts({"x": ("a", "c")})


class _Line:
    """y = w x fitted by least squares: a model with a loss (lower is better)."""

    def loss_and_gradients(self, params, x, y):
        w = params[0]
        err = np.einsum("rbi,rio->rbo", x, w) - y
        loss = (err**2).mean(axis=(1, 2))
        grad = 2 * np.einsum("rbi,rbo->rio", x, err) / (x.shape[1] * y.shape[2])
        return loss, [grad]

    def predict(self, params, x):
        return np.einsum("bi,rio->rbo", x, params[0])

    def loss(self, outputs, y):
        return ((outputs - y[None]) ** 2).mean(axis=(1, 2))


def test_a_loss_metric_is_minimized_and_its_words_follow():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((240, 3))
    y = x @ np.array([[1.0], [-2.0], [0.5]]) + 0.1 * rng.standard_normal((240, 1))

    def builder(scale):
        return lambda rngs: (_Line(), [np.stack([scale * g.standard_normal((3, 1)) for g in rngs])])

    trial = run_trial([Contender("small", builder(0.01)), Contender("large", builder(30.0))],
                      (x[:160], y[:160], x[160:200], y[160:200], x[200:], y[200:]),
                      grid=[1e-3, 1e-2], seeds=3, epochs=1, batch_size=16)  # fmt: skip
    assert trial.metric == "loss"
    assert not trial.higher_is_better
    assert trial.choices["small"].chosen == 1e-2 or trial.choices["small"].widened
    calls = trial.verdicts({"small vs large": ("small", "large")})
    assert calls["small vs large"].word == "ahead"  # a lower loss is ahead


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        (([], _data()), {"grid": [1e-2]}, ValueError, "at least one"),
        ((["a"], _data()), {"grid": [1e-2]}, TypeError, "Contender"),
        (([_contender("a"), _contender("a")], _data()), {"grid": [1e-2]}, ValueError, "distinct"),
        (([_contender("a")], _data()[:2]), {"grid": [1e-2]}, TypeError, "validation"),
        (([_contender("a")], _data()), {"grid": {"b": [1e-2]}}, ValueError, "no rates"),
        (([_contender("a")], _data()), {"grid": [1e-2], "seeds": 1}, ValueError, "seeds"),
        (([_contender("a")], _data()), {"grid": [1e-2], "lr": 0.1}, TypeError, "lr"),
        (([_contender("a")], _data()), {"grid": [1e-2], "seed": -1}, TypeError, "seed"),
    ],
)
def test_run_trial_refuses_bad_input(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        run_trial(*args, **kwargs)


def test_contender_refuses_bad_input():
    with pytest.raises(TypeError, match="name"):
        Contender("", lambda rngs: None)
    with pytest.raises(TypeError, match="build"):
        Contender("a", None)
    with pytest.raises(TypeError, match="fit_options"):
        Contender("a", lambda rngs: None, fit_options=[1])


def test_resolvable_difference_inverts_seeds_needed():
    for spread, seeds, m in ((1.0, 17, 1), (0.03, 12, 6), (2.5, 40, 3)):
        d = resolvable_difference(spread, seeds, comparisons=m)
        assert seeds_needed(spread, d, comparisons=m) <= seeds
        assert seeds_needed(spread, d * (1 - 1e-6), comparisons=m) > seeds or seeds == 3
    with pytest.raises(ValueError, match="spread"):
        resolvable_difference(0.0, 10)
    with pytest.raises(ValueError, match="seeds"):
        resolvable_difference(1.0, 2)
