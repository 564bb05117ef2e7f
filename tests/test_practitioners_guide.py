"""The practitioner's guide: its framework calls exist, its links land, its one-liners are right.

The guide's table (book/practitioners-guide.md) names PyTorch and Keras calls. The PyTorch ones
are checked against the installed torch.nn.init (name and keyword arguments); Keras is not
installed in the test environment, so its names are checked against a list transcribed from
the Keras documentation (source in the comment of each entry).
"""

from __future__ import annotations

import ast
import inspect
import os
import re

import numpy as np
import pytest
from myst_parser.slugs import github_slugify

import eiginit
from booktools import chapters as bc

PAGE = bc.BOOK / "practitioners-guide.md"
TEXT = PAGE.read_text(encoding="utf-8")

# Keras initializers and layers the table names, with the keyword arguments the documentation
# gives them. Checked against the Keras API reference (keras.io/api/layers/initializers/,
# keras.io/api/layers/recurrent_layers/) and the TensorFlow 2.13 tf.keras.initializers page.
KERAS_VERIFIED: dict[str, set[str]] = {
    "initializers.GlorotUniform": {"seed"},
    "initializers.GlorotNormal": {"seed"},
    "initializers.HeNormal": {"seed"},
    "initializers.HeUniform": {"seed"},
    "initializers.LecunNormal": {"seed"},
    "initializers.LecunUniform": {"seed"},
    "initializers.Orthogonal": {"gain", "seed"},
    "initializers.Identity": {"gain"},
    "initializers.Zeros": set(),
    "initializers.RandomNormal": {"mean", "stddev", "seed"},
    "initializers.TruncatedNormal": {"mean", "stddev", "seed"},
    "initializers.VarianceScaling": {"scale", "mode", "distribution", "seed"},
    "layers.SimpleRNN": {"units", "activation", "kernel_initializer", "recurrent_initializer"},
    "layers.LSTM": {"units", "activation", "kernel_initializer", "recurrent_initializer"},
    "layers.GRU": {"units", "activation", "kernel_initializer", "recurrent_initializer"},
}


def _table() -> str:
    match = re.search(r"^```\{list-table\}.*?\n(.*?)^```\s*$", TEXT, re.M | re.S)
    assert match, "no {list-table} in the practitioner's guide"
    return match.group(1)


def _rows() -> list[str]:
    return re.split(r"^\* - ", _table(), flags=re.M)[2:]  # [0]: options, [1]: the header


def _calls(prefix: str) -> list[ast.Call]:
    """Every call in a backtick span of the table whose function starts with `prefix`."""
    calls = []
    for span in re.findall(r"`([^`]+)`", _table()):
        if not span.startswith(prefix):
            continue
        tree = ast.parse(span, mode="eval")
        assert isinstance(tree.body, ast.Call), f"not a call: {span}"
        calls.append(tree.body)
    return calls


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    assert isinstance(node, ast.Attribute), ast.dump(node)
    return f"{_dotted(node.value)}.{node.attr}"


def test_the_table_has_a_row_per_network():
    names = [row.splitlines()[0] for row in _rows()]
    for needed in ("linear", "tanh", "ReLU", "GELU", "SELU", "Residual", "Convolutional",
                   "Recurrent", "LSTM", "Transformer", "wide"):  # fmt: skip
        assert any(needed in name for name in names), f"no row for {needed}: {names}"


def test_the_table_names_torch_and_keras_calls():
    assert len(_calls("torch.nn.init.")) >= 8
    assert len(_calls("keras.")) >= 6


def test_torch_init_calls_exist_with_these_arguments():
    torch = pytest.importorskip("torch")
    for call in _calls("torch.nn.init."):
        name = _dotted(call.func).removeprefix("torch.nn.init.")
        function = getattr(torch.nn.init, name, None)
        assert function is not None, f"torch.nn.init has no {name}"
        parameters = inspect.signature(function).parameters
        for keyword in call.keywords:
            assert keyword.arg in parameters, f"torch.nn.init.{name} has no argument {keyword.arg}"
        assert len(call.args) <= len(parameters)
        for keyword in call.keywords:  # literal values that torch restricts
            if keyword.arg in {"mode", "nonlinearity"}:
                value = ast.literal_eval(keyword.value)
                torch.nn.init.kaiming_normal_(torch.empty(4, 4), **{keyword.arg: value})


def test_keras_calls_are_documented_names():
    for call in _calls("keras."):
        name = _dotted(call.func).removeprefix("keras.")
        assert name in KERAS_VERIFIED, f"keras.{name} is not in the verified list"
        for keyword in call.keywords:
            assert keyword.arg in KERAS_VERIFIED[name], f"keras.{name} has no {keyword.arg}"


def test_the_verified_keras_list_is_checked_where_keras_exists():
    os.environ.setdefault("KERAS_BACKEND", "torch")  # the tests session installs torch, not TF
    keras = pytest.importorskip("keras")
    for name, keywords in KERAS_VERIFIED.items():
        module, cls = name.split(".")
        parameters = inspect.signature(getattr(getattr(keras, module), cls)).parameters
        assert keywords <= set(parameters), (name, keywords - set(parameters))


def _links(text: str) -> list[tuple[str, str]]:
    return re.findall(r"\]\(([a-z0-9-]+)\.md#([a-z0-9-]+)\)", text)


def test_every_row_links_to_a_section_that_exists():
    for row in _rows():
        links = _links(row)
        name = row.splitlines()[0]
        if not links:  # only a row with nothing to link to may go without
            assert "*not tested*" in row.lower() or "chapter in preparation" in row, (
                f"the row {name!r} links to no section"
            )
            continue
        for doc, anchor in links:
            path = bc.BOOK / f"{doc}.md"
            assert path.exists(), f"row {name!r} links to a missing page {doc}.md"
            headings = re.findall(r"^#{1,3} +(.+?)\s*$", path.read_text("utf-8"), re.M)
            slugs = {github_slugify(h) for h in headings}
            assert anchor in slugs, f"row {name!r}: {doc}.md has no section #{anchor}"


def test_every_row_says_how_strong_its_evidence_is():
    words = ("*trained*", "*at initialization*", "*not tested*", "chapter in preparation")
    for row in _rows():
        assert any(w in row.lower() for w in words), f"no verdict in row {row.splitlines()[0]!r}"


# --- the page's one-liners do what it says -------------------------------------------------


def test_pytorch_one_liner_gives_the_weights_eiginit_expects():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3))
    with torch.no_grad():
        for layer in (model[0], model[2]):
            layer.bias.zero_()
    weights = [p.detach().numpy() for p in model.parameters() if p.ndim == 2]
    net = eiginit.MLP(tuple(weights), tuple(np.zeros(W.shape[0], W.dtype) for W in weights), "relu")
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    expected = model(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(net(x), expected, rtol=1e-5, atol=1e-6)


def test_keras_layout_transposed_is_pytorch_layout():
    # A Keras Dense kernel is (fan_in, fan_out) and computes x @ K; the guide transposes it.
    rng = np.random.default_rng(1)
    kernel = rng.standard_normal((5, 3))
    x = rng.standard_normal((4, 5))
    net = eiginit.MLP((kernel.T,), (np.zeros(3),), "linear")
    np.testing.assert_allclose(net(x), x @ kernel)


def test_per_gate_orthogonal_lstm_recipe():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    rnn = torch.nn.LSTM(8, 16)
    with torch.no_grad():
        for block in rnn.weight_hh_l0.chunk(4):
            torch.nn.init.orthogonal_(block)
    for block in rnn.weight_hh_l0.detach().numpy().reshape(4, 16, 16):
        np.testing.assert_allclose(block @ block.T, np.eye(16), atol=1e-5)


def test_kaiming_linear_is_lecun_variance():
    # The SELU row: kaiming_normal_(w, nonlinearity="linear") has variance 1 / fan_in.
    torch = pytest.importorskip("torch")
    generator = torch.Generator().manual_seed(0)
    fan_in, rows = 200, 500
    w = torch.nn.init.kaiming_normal_(
        torch.empty(rows, fan_in), mode="fan_in", nonlinearity="linear", generator=generator
    )
    variance = float(w.var()) * fan_in
    standard_error = np.sqrt(2 / (rows * fan_in))  # of the sample variance of a Gaussian
    assert abs(variance - 1) < 4 * standard_error


@pytest.mark.parametrize(
    ("name", "factor"),
    [("kaiming", 1.0), ("lecun", 0.5), ("torch", 1 / 6)],
)
def test_relu_mean_square_factor_per_layer(name, factor):
    # The ReLU row: per layer, Kaiming keeps the mean square, LeCun (and Xavier on square
    # layers) halves it, PyTorch's nn.Linear default divides it by 6.
    inits = {
        "kaiming": lambda shape, *, rng: eiginit.kaiming_normal(
            shape, nonlinearity="relu", rng=rng
        ),
        "lecun": eiginit.lecun_normal,
        "torch": eiginit.torch_linear_default,
    }
    rng = np.random.default_rng(3)
    depth, width, seeds = 12, 64, 8
    slopes = []
    for _ in range(seeds):
        m2 = eiginit.propagate([width] * (depth + 1), inits[name], "relu", rng=rng)
        m2 = m2.activation_second_moment
        slopes.append(np.log(m2[-1] / m2[1]) / (depth - 1))
    standard_error = np.std(slopes, ddof=1) / np.sqrt(seeds)
    # A log is biased down by about half its variance, about 2 / width per ReLU layer.
    assert abs(np.mean(slopes) - np.log(factor)) < 4 * standard_error + 3 / width
