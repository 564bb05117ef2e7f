"""The practitioner's guide: its calls exist and do what it says, its links land, its layout holds.

The guide (book/practitioners-guide.md) has a three-column overview table and one section per
network with PyTorch and Keras calls in ``python`` code blocks. The calls are checked against the
installed torch.nn.init and Keras 3 (on the torch backend): names, keyword arguments and what
they draw. The code the book cannot execute at build time (it is built without PyTorch and
Keras) is executed here: the ``model.apply`` pattern, the per-gate LSTM loop, the Keras
shared-initializer pitfall, and the ``eiginit.diagnose`` call on a PyTorch model, whose printed
output the page shows.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import io
import math
import os
import re

import numpy as np
import pytest
from myst_parser.slugs import github_slugify

import eiginit
from booktools import chapters as bc

PAGE = bc.BOOK / "practitioners-guide.md"
TEXT = PAGE.read_text(encoding="utf-8")


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")  # the tests session installs torch, not TF
    return pytest.importorskip("keras")


def _array(tensor) -> np.ndarray:
    """A Keras variable's or tensor's values (torch backend; np.asarray warns under numpy 2)."""
    tensor = getattr(tensor, "value", tensor)
    return tensor.detach().cpu().numpy()


def _table() -> str:
    match = re.search(r"^```\{list-table\}.*?\n(.*?)^```\s*$", TEXT, re.M | re.S)
    assert match, "no {list-table} in the practitioner's guide"
    return match.group(1)


def _rows() -> list[str]:
    return re.split(r"^\* - ", _table(), flags=re.M)[2:]  # [0]: options, [1]: the header


def _sections() -> dict[str, str]:
    """Each network's section, by its label: from `(sec-pg-...)=` to the next heading label."""
    network = TEXT.split("## Network by network", 1)[1].split("\n## ", 1)[0]
    parts = re.split(r"^\((sec-pg-[a-z-]+)\)=\n", network, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def _python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", TEXT, re.M | re.S)


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _calls(prefix: str) -> list[ast.Call]:
    """Every call in the page's python blocks whose function starts with `prefix`."""
    calls = []
    for block in _python_blocks():
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.Call) and _dotted(node.func).startswith(prefix):
                calls.append(node)
    return calls


def _block(first_line: str) -> str:
    blocks = [b for b in _python_blocks() if b.startswith(first_line)]
    assert len(blocks) == 1, f"expected one python block starting {first_line!r}"
    return blocks[0]


# --- layout: the overview fits, every network has a section ---------------------------------


def test_the_overview_has_three_short_columns_and_a_row_per_network():
    assert ":widths: 24 40 36" in TEXT
    rows = _rows()
    names = [row.splitlines()[0] for row in rows]
    for needed in ("Linear", "tanh", "ReLU", "GELU", "SELU", "Residual", "Convolutional",
                   "Recurrent", "LSTM", "Transformer", "wide", "learning rate"):  # fmt: skip
        assert any(needed in name for name in names), f"no row for {needed}: {names}"
    for row in rows:
        cells = re.split(r"^  - ", row, flags=re.M)
        assert len(cells) == 3, row
        assert "`" not in row.replace("{ref}`", "").split(">`")[-1], f"code in the table: {row}"
        for cell in cells[1:]:  # a line of a 848 px column holds about 90 characters
            visible = re.sub(r"\$[^$]+\$", "x" * 8, cell.strip())  # a formula: a few characters
            assert len(visible) <= 60, f"a long cell in the overview: {cell.strip()!r}"


def test_every_row_links_to_a_section_of_this_page():
    labels = set(re.findall(r"^\((sec-pg-[a-z-]+)\)=", TEXT, re.M))
    for row in _rows():
        targets = re.findall(r"\{ref\}`[^`]*<(sec-pg-[a-z-]+)>`", row)
        assert targets, f"row {row.splitlines()[0]!r} links to no section"
        assert set(targets) <= labels, (targets, labels)


def test_every_section_has_a_check_and_evidence_with_its_strength():
    sections = _sections()
    assert len(sections) >= 13
    words = ("*trained*", "*at initialization*", "*not tested*")
    for label, body in sections.items():
        assert "**Check:**" in body, label
        assert "**Evidence:**" in body, label
        evidence = body.split("**Evidence:**", 1)[1].lower()
        assert any(w in evidence for w in words), f"no strength in {label}"


def test_code_lines_fit_the_column():
    # 848 px of 14 px monospace holds about 95 characters; the code blocks stay well inside.
    for block in _python_blocks():
        for line in block.splitlines():
            assert len(line) <= 92, f"a code line too wide for the column: {line!r}"
    text_blocks = re.findall(r"^```text\n(.*?)^```", TEXT, re.M | re.S)
    for line in "".join(text_blocks).splitlines():
        assert len(line) <= 80, f"an output line too wide for the column: {line!r}"


def test_every_link_to_a_chapter_lands_on_a_section_that_exists():
    links = re.findall(r"\]\(([a-z0-9-]+)\.md#([a-z0-9-]+)\)", TEXT)
    assert len(links) >= 12
    for doc, anchor in links:
        path = bc.BOOK / f"{doc}.md"
        assert path.exists(), f"a link to a missing page {doc}.md"
        headings = re.findall(r"^#{1,3} +(.+?)\s*$", path.read_text("utf-8"), re.M)
        assert anchor in {github_slugify(h) for h in headings}, f"{doc}.md has no #{anchor}"


# --- the calls exist, with these arguments ---------------------------------------------------


def test_the_page_names_torch_and_keras_calls():
    assert len(_calls("nn.init.")) >= 10
    assert len(_calls("keras.")) >= 10


def test_torch_init_calls_exist_with_these_arguments():
    torch = pytest.importorskip("torch")
    for call in _calls("nn.init."):
        name = _dotted(call.func).removeprefix("nn.init.")
        function = getattr(torch.nn.init, name, None)
        assert function is not None, f"torch.nn.init has no {name}"
        parameters = inspect.signature(function).parameters
        for keyword in call.keywords:
            assert keyword.arg in parameters, f"torch.nn.init.{name} has no argument {keyword.arg}"
            if keyword.arg in {"mode", "nonlinearity"}:  # literal values torch restricts
                value = ast.literal_eval(keyword.value)
                torch.nn.init.kaiming_normal_(torch.empty(4, 4), **{keyword.arg: value})
        assert len(call.args) <= len(parameters)


def test_keras_calls_exist_with_these_arguments():
    keras = _keras()
    for call in _calls("keras."):
        name = _dotted(call.func).removeprefix("keras.")
        target = keras
        for part in name.split("."):
            target = getattr(target, part, None)
            assert target is not None, f"keras has no {name}"
        parameters = inspect.signature(target).parameters
        for keyword in call.keywords:
            assert keyword.arg in parameters or "kwargs" in parameters, (name, keyword.arg)


# --- the calls do what the page says --------------------------------------------------------


def _variance_times_fan_in(torch, init, **kwargs):
    generator = torch.Generator().manual_seed(0)
    w = init(torch.empty(400, 200), generator=generator, **kwargs)
    return float(w.var()) * 200


def test_leaky_relu_slope_is_read_only_with_leaky_relu():
    torch = pytest.importorskip("torch")
    slope = 0.2
    se = 4 * math.sqrt(2 / (400 * 200)) * 2  # four standard errors of the sample variance
    init = torch.nn.init.kaiming_normal_
    fixed = _variance_times_fan_in(torch, init, a=slope, nonlinearity="leaky_relu")
    ignored = _variance_times_fan_in(torch, init, a=slope, nonlinearity="relu")
    assert abs(fixed - 2 / (1 + slope**2)) < se
    assert abs(ignored - 2) < se  # the page: with "relu" the slope is silently ignored
    gain = torch.nn.init.calculate_gain("leaky_relu", slope)
    assert gain == pytest.approx(math.sqrt(2 / (1 + slope**2)))
    assert gain == pytest.approx(eiginit.calculate_gain("leaky_relu", slope))


def test_keras_variance_scaling_defaults_are_he_normal_and_take_the_slope():
    keras = _keras()
    slope = 0.2
    he = keras.initializers.HeNormal()
    scaled = keras.initializers.VarianceScaling(scale=2.0)
    for key in ("mode", "distribution", "scale"):
        assert getattr(he, key) == getattr(scaled, key), key
    w = _array(keras.initializers.VarianceScaling(scale=2 / (1 + slope**2), seed=0)((400, 200)))
    se = 4 * math.sqrt(2 / (400 * 200)) * 2
    # Keras kernels are (fan_in, fan_out): fan_in = 400 here.
    assert abs(w.var() * 400 - 2 / (1 + slope**2)) < se
    # Truncated at two standard deviations of the untruncated normal. (On the torch backend
    # Keras keeps the first of four draws inside the bounds, or the first draw when none is:
    # a fraction 0.0455**4 = 4e-6 lies outside.)
    std = math.sqrt(2 / (1 + slope**2) / 400) / eiginit.KERAS_TRUNCATED_NORMAL_STD
    assert np.mean(np.abs(w) > 2 * std) < 1e-4


def test_one_keras_initializer_object_gives_every_layer_the_same_matrix():
    keras = _keras()

    def kernels(make):
        layers = [keras.layers.Dense(16, kernel_initializer=make()) for _ in range(3)]
        model = keras.Sequential([keras.Input((16,)), *layers])
        return [_array(layer.kernel) for layer in model.layers]

    for init in (keras.initializers.HeNormal(), keras.initializers.Orthogonal(gain=1.0, seed=1)):
        same = kernels(lambda init=init: init)
        assert all(np.array_equal(same[0], k) for k in same[1:]), type(init).__name__
    for make in (lambda: "he_normal", lambda: keras.initializers.HeNormal()):
        fresh = kernels(make)
        assert not any(np.array_equal(fresh[0], k) for k in fresh[1:])
    seed = keras.random.SeedGenerator(0)
    advancing = kernels(lambda: keras.initializers.HeNormal(seed=seed))
    assert not any(np.array_equal(advancing[0], k) for k in advancing[1:])


def test_the_keras_seed_generator_snippet_runs_and_draws_different_layers():
    keras = _keras()
    namespace = {"keras": keras}
    exec(_block("seed = keras.random.SeedGenerator(0)"), namespace)
    layers = namespace["layers"]
    model = keras.Sequential([keras.Input((64,)), *layers])
    kernels = [_array(layer.kernel) for layer in model.layers]
    assert len(kernels) == 12
    assert len({k.tobytes() for k in kernels}) == 12


def test_model_apply_snippet_initializes_linear_and_conv_layers():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(4, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(48, 48))
    namespace = {"nn": nn, "math": math, "model": model}
    exec(_block("def init_weights(module):"), namespace)
    with torch.no_grad():
        for layer in (model[0], model[3]):
            W = layer.weight.reshape(layer.weight.shape[0], -1)
            np.testing.assert_allclose((W @ W.T).numpy(), 2 * np.eye(W.shape[0]), atol=1e-5)
            assert not layer.bias.any()


def test_per_gate_orthogonal_lstm_snippet():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    rnn = torch.nn.LSTM(8, 16)
    exec(_block("for block in rnn.weight_hh_l0.chunk(4)"), {"nn": torch.nn, "rnn": rnn})
    for block in rnn.weight_hh_l0.detach().numpy().reshape(4, 16, 16):
        np.testing.assert_allclose(block @ block.T, np.eye(16), atol=1e-5)


def test_forget_gate_bias_snippet_sets_the_forget_gate_to_one_and_nothing_else():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    rnn = torch.nn.LSTM(3, 8, num_layers=2)
    before = {n: p.detach().clone() for n, p in rnn.named_parameters()}
    exec(_block("H = rnn.hidden_size"), {"torch": torch, "rnn": rnn})
    for layer in range(2):
        total = getattr(rnn, f"bias_ih_l{layer}") + getattr(rnn, f"bias_hh_l{layer}")
        np.testing.assert_allclose(total.detach().numpy()[8:16], 1.0)
    for name, p in rnn.named_parameters():
        keep = np.ones(p.shape[0], dtype=bool)
        if name.startswith("bias"):
            keep[8:16] = False
        np.testing.assert_array_equal(p.detach().numpy()[keep], before[name].numpy()[keep])


def test_keras_lstm_orthogonalizes_the_stacked_kernel_not_the_gates():
    keras = _keras()
    units = 32
    layer = keras.layers.LSTM(units)
    keras.Sequential([keras.Input((5, 4)), layer])
    recurrent = _array(layer.cell.recurrent_kernel)  # (units, 4 units)
    np.testing.assert_allclose(recurrent @ recurrent.T, np.eye(units), atol=1e-5)
    gate = recurrent[:, :units]
    singular = np.linalg.svd(gate, compute_uv=False)
    assert singular[0] <= 1 + 1e-5
    assert singular[-1] < 0.5  # a block of an orthogonal matrix, not orthogonal itself


def test_kaiming_linear_is_lecun_variance():
    # The SELU section: kaiming_normal_(w, nonlinearity="linear") has variance 1 / fan_in.
    torch = pytest.importorskip("torch")
    variance = _variance_times_fan_in(
        torch, torch.nn.init.kaiming_normal_, mode="fan_in", nonlinearity="linear"
    )
    assert abs(variance - 1) < 4 * math.sqrt(2 / (400 * 200))


def test_grouped_convolutions_have_the_right_fan_in_in_pytorch():
    # The section on grouped and depthwise layers: mode="fan_in" is right there in PyTorch.
    torch = pytest.importorskip("torch")
    conv = torch.nn.Conv1d(32, 32, 3, groups=32)
    fan_in, _ = torch.nn.init._calculate_fan_in_and_fan_out(conv.weight)
    assert fan_in == 3  # (32 / 32 channels per group) x kernel 3


@pytest.mark.parametrize(
    ("name", "factor"),
    [("kaiming", 1.0), ("lecun", 0.5), ("torch", 1 / 6)],
)
def test_relu_mean_square_factor_per_layer(name, factor):
    # The ReLU section: per layer, Kaiming keeps the mean square, LeCun (and Xavier on square
    # layers) halves it, PyTorch's nn.Linear weights divide it by 6.
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


# --- the PyTorch diagnosis the page shows, executed -----------------------------------------


def _numbers_and_words(text: str) -> tuple[list[float], str]:
    pattern = r"[-+]?\d+\.?\d*(?:e[-+]?\d+)?"
    return [float(v) for v in re.findall(pattern, text)], re.sub(pattern, "#", text)


def test_the_pytorch_diagnosis_prints_what_the_page_shows():
    pytest.importorskip("torch")
    code = _block("import numpy as np, torch, eiginit")
    shown = re.search(r"^```text\n(eiginit\.diagnose: .*?)^```", TEXT, re.M | re.S).group(1)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(code, {})
    got_numbers, got_words = _numbers_and_words(printed.getvalue())
    want_numbers, want_words = _numbers_and_words(shown)
    assert got_words == want_words
    # float32 on another CPU may differ in the last printed digit.
    np.testing.assert_allclose(got_numbers, want_numbers, rtol=2e-2)
