"""eiginit.claims: a sentence its numbers contradict stops the build; the house-style count."""

import numpy as np
import pytest

from booktools import chapters as bc
from eiginit import ClaimError, claim, compare


def test_claim_passes_and_returns_the_sentence():
    assert claim("the loss falls", np.float64(1.0) < 2.0, first=2.0, last=1.0) == "the loss falls"


def test_claim_fails_quoting_sentence_and_numbers():
    with pytest.raises(ClaimError, match=r'"the loss falls" is contradicted.*last = 2\.5'):
        claim("the loss falls", 2.5 < 1.0, first=1.0, last=2.5)


@pytest.mark.parametrize("bad", [np.array([True, False]), None, 1, 0.0, "yes"])
def test_claim_refuses_a_condition_that_is_not_one_boolean(bad):
    with pytest.raises(TypeError, match="holds must be one boolean"):
        claim("a sentence", bad)


def test_claim_accepts_zero_d_boolean_arrays():
    assert claim("s", np.array(True)) == "s"


@pytest.mark.parametrize("bad", ["", "   ", None, 3])
def test_claim_refuses_an_empty_sentence(bad):
    with pytest.raises(TypeError, match="sentence"):
        claim(bad, True)


@pytest.mark.parametrize(
    ("a", "b", "spread", "word"),
    [(1.0, 2.0, 0.0, "below"), (2.0, 1.0, 0.0, "above"), (1.0, 1.0, 0.0, "level with"),
     (1.0, 1.5, 0.5, "level with"), (1.0, 1.6, 0.5, "below")],
)  # fmt: skip
def test_compare_words(a, b, spread, word):
    assert compare(a, b, spread=spread) == word


def test_compare_refuses_bad_input():
    with pytest.raises(ValueError, match="spread"):
        compare(1, 2, spread=-1)
    with pytest.raises(ValueError, match="finite"):
        compare(float("nan"), 2)
    with pytest.raises(TypeError, match="words"):
        compare(1, 2, words=("a", "b"))
    with pytest.raises(TypeError, match="a must be a real number"):
        compare("1", 2)


HEADER = "---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\n---\n"


def test_count_claims_counts_calls_of_claim_and_compare():
    text = (
        HEADER
        + "# T\n\n```{code-cell} ipython3\nclaim('x', True)\nw = eiginit.compare(1, 2)\n```\n"
    )
    assert bc.count_claims(bc.Chapter("t", text)) == 2
    assert bc.count_claims(bc.Chapter("t", HEADER + "# T\n")) == 0
