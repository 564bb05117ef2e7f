"""eiginit.training.protocol: Welch's interval, Holm's correction and the verdicts' words."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from eiginit.training.protocol import holm, student_t_quantile, verdicts, welch


def test_holm_by_hand():
    """m = 5: sorted 0.001, 0.01, 0.012, 0.03, 0.2 times 5, 4, 3, 2, 1 is 0.005, 0.04, 0.036,
    0.06, 0.2; made non-decreasing: 0.005, 0.04, 0.04, 0.06, 0.2."""
    adjusted, reject = holm([0.03, 0.001, 0.2, 0.012, 0.01], alpha=0.05)
    np.testing.assert_allclose(adjusted, [0.06, 0.005, 0.2, 0.04, 0.04])
    assert reject.tolist() == [False, True, False, True, True]
    # The step-down stops at the first p-value above its threshold: alpha / (m - j + 1).
    adjusted, reject = holm([0.011, 0.011, 0.04])
    np.testing.assert_allclose(adjusted, [0.033, 0.033, 0.04])
    assert reject.all()
    assert holm([0.6, 0.7])[0].tolist() == [1.0, 1.0]  # capped at 1


def test_holm_rejects_everything_bonferroni_rejects():
    p = np.random.default_rng(3).uniform(0, 0.05, 40) ** 2
    bonferroni = np.minimum(1, p * p.size) <= 0.05
    assert (holm(p)[1] >= bonferroni).all()


@pytest.mark.parametrize("seed", range(5))
def test_welch_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(50, 2, 5), rng.normal(48.5, 1 + seed, 5 + seed)
    mine = welch(a, b)
    ref = stats.ttest_ind(a, b, equal_var=False)
    ci = ref.confidence_interval(0.95)
    np.testing.assert_allclose([mine.low, mine.high, mine.p_value], [ci.low, ci.high, ref.pvalue],
                               rtol=1e-9)  # fmt: skip


@pytest.mark.parametrize(("q", "df"), [(0.975, 4), (0.975, 3.3), (0.995, 1), (0.9, 200), (0.2, 7)])
def test_student_t_quantile_matches_scipy(q, df):
    assert student_t_quantile(q, df) == pytest.approx(stats.t.ppf(q, df), rel=1e-10)


def test_welch_without_spread_is_exact():
    stuck = [0.089, 0.089, 0.089]
    assert welch(stuck, stuck).p_value == 1.0
    w = welch([0.5, 0.5], stuck)
    assert (w.low, w.high, w.p_value) == (w.difference, w.difference, 0.0)


def test_verdicts_apply_holm_to_the_family():
    rng = np.random.default_rng(0)
    base = rng.normal(0, 1, 5)
    pairs = {"clear": (base + 5, base[::-1]), "marginal": (base + 1.6, rng.normal(0, 1, 5))}
    p = [welch(*pair).p_value for pair in pairs.values()]
    calls = verdicts(pairs)
    assert calls["clear"].word == "ahead"
    assert calls["clear"].separated
    assert calls["marginal"].family == 2
    assert calls["marginal"].adjusted_p == pytest.approx(max(p[1], min(1, 2 * min(p))))
    assert (calls["marginal"].word == "a tie") == (calls["marginal"].adjusted_p > 0.05)
    calls = verdicts({"x": (base, base + 5)}, words=("trails", "ties with", "leads"))
    assert calls["x"].word == "trails"


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="at least 2 values"):
        welch([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="confidence must be in"):
        welch([1, 2], [1, 2], confidence=1.5)
    with pytest.raises(ValueError, match=r"p_values must lie in \[0, 1\]"):
        holm([0.1, 1.2])
    with pytest.raises(ValueError, match="non-empty flat list"):
        holm([])
    with pytest.raises(TypeError, match="pairs must be a non-empty mapping"):
        verdicts({})
    with pytest.raises(TypeError, match="words must be three strings"):
        verdicts({"x": ([1, 2], [2, 3])}, words=("a", "b"))
    with pytest.raises(ValueError, match="a must be finite"):
        welch([1, np.nan], [1, 2])
