r"""The book's checks at initialization, run on a reader's own network.

The page "The practitioner's guide" (section "Diagnose your own network") uses it. One call,
:func:`diagnose`, measures on a batch of the reader's inputs the numbers the chapters teach to
read:

- each weight layer's spectral norm, the largest singular value of its weight reshaped to
  ``(fan_out, -1)`` (chapter "Eigenvalues are not the whole story"; chapter "Width" sets it
  against :math:`\sqrt{\mathrm{fan\_out}/\mathrm{fan\_in}}`);
- the mean square of each weight layer's output, and the part of it that varies from input to
  input (chapter "Variance scaling"): a bias can hold the mean square level while the signal
  has stopped depending on the input;
- the largest singular value of the input-output Jacobian at one input (chapter "The backward
  pass"), by power iteration on :math:`J^\top J` (chapter "Power iteration");
- with labels, the eigenvalue of largest modulus of the Hessian of the mean cross-entropy
  (chapter "Curvature at initialization"), by the same power iteration.

The model is a PyTorch ``torch.nn.Module`` (PyTorch is imported only then: ``pip install
eiginit[torch]``), an :class:`eiginit.MLP`, or a list of numpy weight matrices with an
activation. A PyTorch model is measured in evaluation mode (dropout off, batch normalization on
its running statistics) and left exactly as it was found.
"""

from __future__ import annotations

import contextlib
import html
import math
import numbers
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from eiginit._checks import _describe, check_int, check_positive_float, check_rng
from eiginit.models.network import MLP
from eiginit.theory.curvature import HessianEigenResult, hessian_top_eigenvalue

__all__ = ["Diagnosis", "LayerReport", "diagnose"]

# Where each number is explained, and what it should be: (chapter title, page, expected).
_READING = {
    "spectral_norm": (
        "Eigenvalues are not the whole story (ch. 3), Width (ch. 12)",
        "beyond-eigenvalues",
        "of the order of sqrt(fan_out / fan_in), the target column; a Gaussian layer of "
        "variance c / fan_in sits near sqrt(c) (1 + sqrt(fan_out / fan_in)) (ch. 4)",
    ),
    "mean_square": (
        "Variance scaling (ch. 6)",
        "variance-scaling",
        "level from layer to layer: a constant factor per layer compounds over depth",
    ),
    "input_share": (
        "The practitioner's guide; Variance scaling (ch. 6)",
        "practitioners-guide",
        "of order one (a few tenths in a ReLU network, whose activations share a positive "
        "mean), not falling by orders of magnitude from layer to layer: then the output no "
        "longer depends on the input (a bias holds the mean square)",
    ),
    "recurrent": (
        "Recurrent networks (ch. 9)",
        "recurrent-networks",
        "below 1 for a linear network's state and gradient to fade (rho < 1 suffices for "
        "vanishing, rho > 1 is needed for exploding), just below 1 for an echo-state "
        "reservoir; PyTorch's default U(+-1/sqrt(hidden)) gives about 1/sqrt(3) = 0.577 per "
        "block, an orthogonal SimpleRNN kernel 1, an orthogonal LSTM kernel about 1/2 per gate. "
        "With tanh or sigmoid units sigma_max (spec.norm), not rho, bounds the gradient; an "
        "LSTM's memory also runs through its forget-gate bias",
    ),
    "attention": (
        "Attention (ch. 14)",
        "attention",
        "of the order of the tokens' mean square (weights of variance 1 / embed_dim keep it), "
        "so that a logit q.k / sqrt(d_k) has variance near q's times k's mean square, about 1: "
        "much larger logits give one-hot attention rows (entropy collapse), much smaller ones "
        "uniform rows, which pull the tokens to one common vector (rank collapse) within a few "
        "layers",
    ),
    "jacobian": (
        "The backward pass (ch. 7)",
        "backward-pass",
        "of order 1, neither growing nor shrinking geometrically with depth",
    ),
    "hessian": (
        "Curvature at initialization (ch. 13)",
        "curvature",
        "a value that sets the scale of the learning rate: full-batch gradient descent is "
        "stable near the start for eta < 2 / lambda (2 (1 + beta) / lambda with heavy-ball "
        "momentum beta); a rough scale, not a limit, for minibatches and Adam",
    ),
}


@dataclass(frozen=True)
class LayerReport:
    r"""One weight layer of a :class:`Diagnosis`.

    Attributes
    ----------
    name : str
        The module's qualified name, as ``named_modules()`` gives it (``"0"``, ``"1"``, ... for
        a list of matrices or an :class:`eiginit.MLP`).
    kind : str
        The module's class name (``"Linear"``, ``"Conv2d"``, ...).
    fan_out : int
        The first axis of the weight (output features or channels).
    fan_in : int
        The length of the weight reshaped to ``(fan_out, -1)``: input features, or input
        channels per group times the kernel size.
    spectral_norm : float
        The largest singular value of that matrix.
    mean_square : float
        The mean square of the layer's output on the batch,
        :math:`\frac{1}{B N}\sum_{i,j} h_{ij}^2`.
    variance_across_inputs : float
        The variance over the batch of each output unit, averaged over the units:
        :math:`\frac1N \sum_j \operatorname{Var}_i h_{ij}`, the part of the mean square that
        depends on the input.
    spectral_radius : float or None
        For a square recurrent block of ``nn.RNN``, ``nn.LSTM`` or ``nn.GRU`` (a ``weight_hh``
        matrix or one gate's block of it): :math:`\rho(W) = \max_i |\lambda_i(W)|`, the seed's
        quantity, from the eigenvalues (chapter "Recurrent networks"). None for every other
        record.
    """

    name: str
    kind: str
    fan_out: int
    fan_in: int
    spectral_norm: float
    mean_square: float
    variance_across_inputs: float
    spectral_radius: float | None = None

    @property
    def spectral_target(self) -> float:
        r""":math:`\sqrt{\mathrm{fan\_out}/\mathrm{fan\_in}}`, the spectral condition's scale."""
        return math.sqrt(self.fan_out / self.fan_in)

    @property
    def input_share(self) -> float:
        """``variance_across_inputs / mean_square``, in [0, 1] (0 for an all-zero output)."""
        if self.mean_square == 0.0:
            return 0.0
        return min(1.0, self.variance_across_inputs / self.mean_square)


@dataclass(frozen=True, eq=False)
class Diagnosis:
    r"""What :func:`diagnose` measured; ``str()`` and the notebook show it as a table.

    Attributes
    ----------
    layers : tuple of LayerReport
        One record per weight matrix, in module order (several per attention or recurrent
        module: see :func:`diagnose`).
    jacobian_sigma_max : float or None
        The largest singular value of the Jacobian of the flattened output with respect to the
        flattened input, at ``x[:1]``; None if autograd could not differentiate the model
        twice (``jacobian_reason`` says why).
    jacobian_converged : bool
        Whether its power iteration met the tolerance.
    hessian_top_eigenvalue : HessianEigenResult or None
        With labels: the eigenvalue of largest modulus of the loss Hessian with respect to
        every trainable parameter (``.eigenvalue``, ``.converged``); None without labels, or if
        autograd could not differentiate the model twice (``hessian_reason`` says why).
    batch : int
        The number of inputs measured.
    source : str
        ``"torch"`` or ``"numpy"``.
    jacobian_reason : str or None
        Why ``jacobian_sigma_max`` is None (the error autograd raised); None otherwise.
    hessian_reason : str or None
        Why ``hessian_top_eigenvalue`` is None although labels were given; None otherwise.
    """

    layers: tuple[LayerReport, ...]
    jacobian_sigma_max: float | None
    jacobian_converged: bool
    hessian_top_eigenvalue: HessianEigenResult | None
    batch: int
    source: str
    jacobian_reason: str | None = None
    hessian_reason: str | None = None

    def _summary_rows(self) -> list[tuple[str, str, str, str]]:
        """(quantity, value, where explained, what it should be)."""
        layers = self.layers
        first, last = layers[0].mean_square, layers[-1].mean_square
        if first > 0:
            per_layer = (last / first) ** (1 / max(len(layers) - 1, 1)) if last > 0 else 0.0
            drift = f"{per_layer:.3g} per layer (last / first = {last / first:.3g})"
        else:
            drift = "first layer's output is zero"
        shares = [r.input_share for r in layers]
        ratios = [r.spectral_norm / r.spectral_target for r in layers]
        if self.jacobian_sigma_max is None:
            jacobian = f"not measured ({self.jacobian_reason})"
        else:
            jacobian = f"{self.jacobian_sigma_max:.4g}" + (
                "" if self.jacobian_converged else " (not converged)"
            )
        rows = [
            (
                "spectral norm / sqrt(fan_out/fan_in)",
                f"{min(ratios):.3g} to {max(ratios):.3g}",
                *_READING["spectral_norm"][::2],
            ),
            ("mean square, change", drift, *_READING["mean_square"][::2]),
            (
                "input share, smallest",
                f"{min(shares):.3g} (layer {layers[int(np.argmin(shares))].name})",
                *_READING["input_share"][::2],
            ),
        ]
        recurrent = [r for r in layers if r.spectral_radius is not None]
        if recurrent:
            radii = [r.spectral_radius for r in recurrent]
            top = recurrent[int(np.argmax(radii))]
            rows.append(
                (
                    "recurrent spectral radius rho",
                    f"{min(radii):.3g} to {max(radii):.3g} (largest: {top.name}, "
                    f"sigma_max {top.spectral_norm:.3g})",
                    *_READING["recurrent"][::2],
                )
            )
        attention = [r for r in layers if r.name.endswith(_QK_SUFFIXES)]
        if attention:
            pairs = [f"{r.name} {r.mean_square:.3g}" for r in attention]
            rows.append(
                ("attention query/key mean square", "; ".join(pairs), *_READING["attention"][::2])
            )
        rows.append(("Jacobian sigma_max at x[:1]", jacobian, *_READING["jacobian"][::2]))
        top = self.hessian_top_eigenvalue
        if top is None:
            value = (
                f"not measured ({self.hessian_reason})"
                if self.hessian_reason
                else "not measured (pass labels)"
            )
        else:
            value = f"{top.eigenvalue:.4g} ({'converged' if top.converged else 'not converged'})"
            if top.eigenvalue > 0:
                value += f"; 2/lambda = {2 / top.eigenvalue:.3g}"
        rows.append(("Hessian top eigenvalue lambda", value, *_READING["hessian"][::2]))
        return rows

    def _has_radius(self) -> bool:
        return any(r.spectral_radius is not None for r in self.layers)

    def to_text(self) -> str:
        """Return the diagnosis as text: the layer table, then each number with its reading.

        Lines are at most 78 characters (longer only for long module names). A ``radius``
        column (the spectral radius of recurrent blocks) appears when the model has one.
        """
        header = (
            f"eiginit.diagnose: {len(self.layers)} weight layers, {self.batch} inputs "
            f"({self.source}{', eval mode' if self.source == 'torch' else ''})"
        )
        width = max(5, *(len(r.name) for r in self.layers))
        kind = max(8, *(len(r.kind) for r in self.layers))
        radius = self._has_radius()
        lines = [
            header,
            f"{'layer':<{width}} {'kind':<{kind}} {'shape':>9} {'spec.norm':>9} {'target':>7}"
            f" {'mean sq.':>9} {'share':>7}" + (f" {'radius':>7}" if radius else ""),
        ]
        for r in self.layers:
            shape = f"{r.fan_out}x{r.fan_in}"
            line = (
                f"{r.name:<{width}} {r.kind:<{kind}} {shape:>9} {r.spectral_norm:>9.3g} "
                f"{r.spectral_target:>7.3g} {r.mean_square:>9.3g} {r.input_share:>7.3g}"
            )
            if radius:
                rho = "-" if r.spectral_radius is None else f"{r.spectral_radius:.3g}"
                line += f" {rho:>7}"
            lines.append(line)
        lines.append("(target: sqrt(fan_out/fan_in); share: variance across inputs / mean sq.)")
        notes = []
        if any(r.kind == "MultiheadAttention" for r in self.layers):
            notes.append(
                "attention rows, Attention (ch. 14): mean sq. of the projected query, key and "
                "value tokens, and of the attention output on the out_proj row"
            )
        if any(r.kind in _RECURRENT for r in self.layers):
            notes.append(
                "recurrent rows, Recurrent networks (ch. 9): [gate] is one gate's block of "
                "the rows; radius: largest |eigenvalue| of a recurrent block; mean sq. of the "
                "module's output sequence"
            )
        for note in notes:
            lines += textwrap.wrap(f"({note})", 78)
        for quantity, value, where, expected in self._summary_rows():
            lines.append(f"{quantity}: {value}")
            lines += textwrap.wrap(
                f"{where}. Expect: {expected}", 78, initial_indent="  ", subsequent_indent="  "
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    def _repr_html_(self) -> str:
        """Return the diagnosis as HTML tables, for notebooks."""
        e = html.escape
        radius = self._has_radius()
        names = ("layer", "kind", "shape", "spectral norm", "target", "mean square", "share")
        head = "".join(f"<th>{h}</th>" for h in names + (("spectral radius",) if radius else ()))

        def rho(r: LayerReport) -> str:
            if not radius:
                return ""
            return f"<td>{'-' if r.spectral_radius is None else f'{r.spectral_radius:.3g}'}</td>"

        body = "".join(
            f"<tr><td><code>{e(r.name)}</code></td><td>{e(r.kind)}</td>"
            f"<td>{r.fan_out}&times;{r.fan_in}</td><td>{r.spectral_norm:.3g}</td>"
            f"<td>{r.spectral_target:.3g}</td><td>{r.mean_square:.3g}</td>"
            f"<td>{r.input_share:.3g}</td>{rho(r)}</tr>"
            for r in self.layers
        )
        summary = "".join(
            f"<tr><td>{e(q)}</td><td>{e(v)}</td><td>{e(w)}</td><td>{e(x)}</td></tr>"
            for q, v, w, x in self._summary_rows()
        )
        return (
            f"<div class='eiginit-diagnosis'><p>{e(self.to_text().splitlines()[0])}</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
            "<table><thead><tr><th>quantity</th><th>value</th><th>explained in</th>"
            f"<th>expect</th></tr></thead><tbody>{summary}</tbody></table></div>"
        )


# The records whose mean square is a projected query or key (Attention, ch. 14).
_QK_SUFFIXES = ("in_proj[q]", "in_proj[k]", "q_proj_weight", "k_proj_weight")


# --- the power iteration shared by the Jacobian and the torch Hessian -------------------------


def _power(
    apply: Callable[[np.ndarray], np.ndarray], u: np.ndarray, tol: float, max_iter: int
) -> tuple[float, np.ndarray, int, bool, float, np.ndarray]:
    r"""Power iteration on a symmetric operator (Golub & Van Loan 2013, section 7.3.1).

    Stops when :math:`\|A u - \mu u\| \le tol\,|\mu|`; returns (mu, u, iterations, converged,
    residual, estimates). An operator that maps the iterate to zero gives mu = 0, converged.
    """
    u = u / np.linalg.norm(u)
    estimates = np.empty(max_iter)
    mu, residual = 0.0, math.inf
    for n in range(max_iter):
        image = apply(u)
        q = float(np.linalg.norm(image))
        if q == 0.0:
            return 0.0, u, n + 1, True, 0.0, np.zeros(n + 1)
        mu = float(u @ image)
        residual = float(np.linalg.norm(image - mu * u))
        estimates[n] = mu
        if residual <= tol * abs(mu):
            return mu, u, n + 1, True, residual, estimates[: n + 1].copy()
        u = image / q
    return mu, u, max_iter, False, residual, estimates


# --- numpy networks ------------------------------------------------------------------------


def _as_mlp(model: Any, activation: Any) -> MLP:
    if isinstance(model, MLP):
        if activation is not None:
            raise ValueError("activation is given by the MLP itself; pass activation=None")
        return model
    if isinstance(model, str | bytes | np.ndarray) or not isinstance(model, Sequence):
        raise TypeError(
            "model must be a torch.nn.Module, an eiginit.MLP or a list of (fan_out, fan_in) "
            f"weight matrices, got {_describe(model)}"
        )
    if activation is None:
        raise TypeError(
            "activation must name the hidden layers' activation (for example 'relu') when "
            "model is a list of weight matrices, got None"
        )
    weights = tuple(np.asarray(W) for W in model)
    if not weights or any(W.ndim != 2 for W in weights):
        raise ValueError(
            "model must be a non-empty list of 2-D (fan_out, fan_in) weight matrices, got "
            f"shapes {[W.shape for W in weights]}"
        )
    dtype = np.float32 if all(W.dtype == np.float32 for W in weights) else np.float64
    weights = tuple(W.astype(dtype) for W in weights)
    biases = tuple(np.zeros(W.shape[0], dtype) for W in weights)
    return MLP(weights, biases, activation)  # MLP checks the activation and the shapes


def _diagnose_mlp(
    net: MLP, x: Any, labels: Any, rng: np.random.Generator, tol: float, max_iter: int
) -> Diagnosis:
    batch = np.asarray(x)
    if batch.ndim != 2 or batch.shape[0] < 2:
        raise ValueError(
            f"x must be a batch of at least two inputs, shape (batch, {net.sizes[0]}), got "
            f"shape {batch.shape}"
        )
    fp = net.forward(x)  # checks x against the network
    layers = []
    for index, (W, h) in enumerate(zip(net.weights, fp.preactivations, strict=True)):
        h = h.astype(np.float64)
        layers.append(
            LayerReport(
                name=str(index),
                kind="Linear",
                fan_out=W.shape[0],
                fan_in=W.shape[1],
                spectral_norm=float(np.linalg.norm(W.astype(np.float64), 2)),
                mean_square=float(np.mean(h**2)),
                variance_across_inputs=float(np.mean(np.var(h, axis=0))),
            )
        )
    J = net.jacobian(fp.activations[0][:1])[0].astype(np.float64)
    top = None
    if labels is not None:
        top = hessian_top_eigenvalue(net, x, labels, rng=rng, tol=tol, max_iter=max_iter)
    return Diagnosis(tuple(layers), float(np.linalg.norm(J, 2)), True, top, len(batch), "numpy")


# --- PyTorch models ------------------------------------------------------------------------


def _is_torch_module(model: Any) -> bool:
    return any(
        c.__module__.startswith("torch.nn") and c.__name__ == "Module" for c in type(model).__mro__
    )


def _torch_inputs(torch: Any, model: Any, x: Any, labels: Any) -> tuple[Any, Any]:
    parameters = list(model.parameters())
    if not parameters:
        raise ValueError("model has no parameters to diagnose")
    reference = parameters[0]
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x)).to(reference.dtype)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor or a numpy array, got {_describe(x)}")
    if not torch.is_floating_point(x):
        raise TypeError(f"x must hold floating-point numbers, got dtype {x.dtype}")
    if x.ndim < 2 or x.shape[0] < 2:
        raise ValueError(
            f"x must be a batch of at least two inputs (batch first), got shape {tuple(x.shape)}"
        )
    x = x.detach()
    if not bool(torch.isfinite(x).all()):
        raise ValueError("x must be finite, got NaN or infinite entries")
    if labels is not None:
        if isinstance(labels, np.ndarray | list | tuple):
            labels = torch.as_tensor(np.asarray(labels))
        if not isinstance(labels, torch.Tensor):
            raise TypeError(f"labels must be a tensor of class indices, got {_describe(labels)}")
        if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
            raise TypeError(f"labels must hold integer class indices, got dtype {labels.dtype}")
        if tuple(labels.shape) != (x.shape[0],):
            raise ValueError(
                f"labels must have shape ({x.shape[0]},), one class per input, got "
                f"{tuple(labels.shape)}"
            )
        labels = labels.detach().to(device=x.device, dtype=torch.long)
    return x, labels


def _first(out: Any) -> Any:
    """Return the model's output, or its first element if it is a tuple (``nn.LSTM``, ...)."""
    return out[0] if isinstance(out, tuple | list) else out


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _per_input(h: np.ndarray, axis: int, batch: int) -> np.ndarray:
    """Rows = inputs: move the batch axis first, then flatten the rest."""
    if axis and h.ndim > axis and h.shape[axis] == batch:
        h = np.moveaxis(h, axis, 0)
    return h.reshape(batch, -1) if h.size % batch == 0 else h.reshape(h.shape[0], -1)


def _record(
    name: str, kind: str, W: np.ndarray, h: np.ndarray, recurrent: bool = False
) -> LayerReport:
    radius = None
    if recurrent and W.shape[0] == W.shape[1]:
        radius = float(np.max(np.abs(np.linalg.eigvals(W))))
    return LayerReport(
        name=name,
        kind=kind,
        fan_out=W.shape[0],
        fan_in=W.shape[1],
        spectral_norm=float(np.linalg.norm(W, 2)),
        mean_square=float(np.mean(h**2)),
        variance_across_inputs=float(np.mean(np.var(h, axis=0))),
        spectral_radius=radius,
    )


# PyTorch packs the gates of a recurrent weight along its rows, in this order
# (torch/nn/modules/rnn.py, the LSTM and GRU docstrings: W_ii|W_if|W_ig|W_io, W_ir|W_iz|W_in).
_GATES = {"LSTM": "ifgo", "GRU": "rzn"}
_RECURRENT = ("RNN", "LSTM", "GRU")


def _qkv_blocks(torch: Any, m: Any) -> list[tuple[str, Any, Any]]:
    """(suffix, weight, bias) of the query, key and value projections of a MultiheadAttention."""
    E = m.embed_dim
    bias = [None] * 3 if m.in_proj_bias is None else list(m.in_proj_bias.detach().split(E))
    if m._qkv_same_embed_dim:
        weights = list(m.in_proj_weight.detach().split(E))
        suffixes = ["in_proj[q]", "in_proj[k]", "in_proj[v]"]
    else:
        weights = [m.q_proj_weight.detach(), m.k_proj_weight.detach(), m.v_proj_weight.detach()]
        suffixes = ["q_proj_weight", "k_proj_weight", "v_proj_weight"]
    return list(zip(suffixes, weights, bias, strict=True))


def _torch_records(
    torch: Any, model: Any, x: Any, as_numpy: Callable[[Any], np.ndarray]
) -> list[LayerReport]:
    """Run the model once with hooks; one record per weight matrix (see :func:`diagnose`)."""
    nn = torch.nn
    kinds = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
    modules = dict(model.named_modules())
    attention = {n for n, m in modules.items() if isinstance(m, nn.MultiheadAttention)}
    weighted = []
    for name, m in modules.items():
        parent = name.rpartition(".")[0] if "." in name else ("" if name else None)
        if isinstance(m, kinds) and parent in attention and m is modules[parent].out_proj:
            continue  # reported with its MultiheadAttention, under its qualified name
        if isinstance(m, (*kinds, nn.MultiheadAttention, nn.RNNBase)):
            weighted.append((name, m))
    if not weighted:
        raise ValueError(
            "model has no Linear, Conv1d, Conv2d, Conv3d, MultiheadAttention, RNN, LSTM or GRU "
            "layer; diagnose measures those"
        )
    outputs: dict[str, Any] = {}
    inputs: dict[str, Any] = {}

    def keep_output(_m: Any, _i: Any, out: Any, name: str) -> None:
        outputs[name] = out[0] if isinstance(out, tuple) else out

    def keep_input(_m: Any, args: Any, kwargs: Any, name: str) -> None:
        given = dict(zip(("query", "key", "value"), args, strict=False))
        inputs[name] = [given.get(k, kwargs.get(k)) for k in ("query", "key", "value")]

    hooks = []
    for name, m in weighted:
        hooks.append(m.register_forward_hook(lambda m, i, o, name=name: keep_output(m, i, o, name)))
        if isinstance(m, nn.MultiheadAttention):
            hooks.append(
                m.register_forward_pre_hook(
                    lambda m, a, k, name=name: keep_input(m, a, k, name), with_kwargs=True
                )
            )
    try:
        with torch.no_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    batch = int(x.shape[0])
    layers = []
    for name, m in weighted:
        if name not in outputs:
            raise ValueError(f"the layer {name!r} is not used by the model's forward pass")
        out = outputs.pop(name)
        if isinstance(out, nn.utils.rnn.PackedSequence):
            out = out.data  # one row per (sequence, step)
        kind = type(m).__name__
        if isinstance(m, nn.MultiheadAttention):
            axis = 0 if m.batch_first else 1
            for (suffix, W, b), token in zip(_qkv_blocks(torch, m), inputs.pop(name), strict=True):
                projected = nn.functional.linear(token.detach(), W, b)
                h = _per_input(as_numpy(projected), axis, batch)
                layers.append(_record(_join(name, suffix), kind, as_numpy(W), h))
            h = _per_input(as_numpy(out), axis, batch)
            layers.append(_record(_join(name, "out_proj"), kind, as_numpy(m.out_proj.weight), h))
        elif isinstance(m, nn.RNNBase):
            h = _per_input(as_numpy(out), 0 if m.batch_first else 1, batch)
            gates = _GATES.get(m.mode, "")
            for weight in m._flat_weights_names:
                if not weight.startswith("weight_"):
                    continue
                W = as_numpy(getattr(m, weight))
                recurrent = weight.startswith("weight_hh")
                layers.append(_record(_join(name, weight), kind, W, h, recurrent))
                if gates and not weight.startswith("weight_hr"):
                    for gate, block in zip(gates, np.split(W, len(gates)), strict=True):
                        layers.append(
                            _record(_join(name, f"{weight}[{gate}]"), kind, block, h, recurrent)
                        )
        else:
            axis = 0
            parent = modules.get(name.rpartition(".")[0]) if "." in name else None
            if isinstance(parent, nn.TransformerEncoderLayer | nn.TransformerDecoderLayer):
                axis = 0 if parent.self_attn.batch_first else 1
            W = as_numpy(m.weight).reshape(m.weight.shape[0], -1)
            layers.append(_record(name, kind, W, _per_input(as_numpy(out), axis, batch)))
    return layers


def _diagnose_torch(
    model: Any, x: Any, labels: Any, rng: np.random.Generator, tol: float, max_iter: int
) -> Diagnosis:
    import torch
    from torch.func import functional_call

    x, labels = _torch_inputs(torch, model, x, labels)
    modes = [(m, m.training) for m in model.modules()]
    frozen = {n: p.detach() for n, p in model.named_parameters()}
    buffers = {n: b.detach() for n, b in model.named_buffers()}
    mha = getattr(torch.backends, "mha", None)
    fastpath = mha.get_fastpath_enabled() if mha is not None else None

    def as_numpy(t: Any) -> np.ndarray:
        return t.detach().to("cpu", torch.float64).numpy()

    stack = contextlib.ExitStack()
    try:
        model.eval()
        if mha is not None:  # the fused transformer kernels skip the hooked submodules
            mha.set_fastpath_enabled(False)
        layers = _torch_records(torch, model, x, as_numpy)

        # PyTorch's fused CPU attention kernel has no double backward; the math kernel has.
        attention = getattr(getattr(torch.nn, "attention", None), "sdpa_kernel", None)
        if attention is not None:
            stack.enter_context(attention(torch.nn.attention.SDPBackend.MATH))

        # The Jacobian at x[:1]: power iteration on J^T J. J^T u is one backward pass; as it is
        # linear in u, differentiating it with respect to u gives J v (double backward).
        sigma, converged, jacobian_reason = None, False, None
        try:
            x0 = x[:1].clone().requires_grad_(True)
            y = _first(functional_call(model, {**frozen, **buffers}, (x0,))).reshape(-1)
            u = torch.zeros_like(y, requires_grad=True)
            (jt_u,) = torch.autograd.grad(y, x0, u, create_graph=True)

            def jtj(v: np.ndarray) -> np.ndarray:
                tangent = torch.from_numpy(v.reshape(x0.shape)).to(x0.dtype).to(x0.device)
                (jv,) = torch.autograd.grad(jt_u, u, tangent, retain_graph=True, allow_unused=True)
                if jv is None:  # J^T u does not depend on u: J = 0
                    return np.zeros_like(v)
                (back,) = torch.autograd.grad(y, x0, jv, retain_graph=True)
                return as_numpy(back).ravel()

            # Double backward must agree with backward: <J v, w> = <v, J^T w>. A module whose
            # backward is not differentiable (a custom Function marked once_differentiable)
            # cuts the graph and would make J v silently zero or wrong.
            v, w = rng.standard_normal(x0.numel()), rng.standard_normal(y.numel())
            tangent = torch.from_numpy(v.reshape(x0.shape)).to(x0.dtype).to(x0.device)
            (jv,) = torch.autograd.grad(jt_u, u, tangent, retain_graph=True, allow_unused=True)
            left = 0.0 if jv is None else float(as_numpy(jv).ravel() @ w)
            cotangent = torch.from_numpy(w).to(y.dtype).to(y.device)
            (jtw,) = torch.autograd.grad(y, x0, cotangent, retain_graph=True)
            right = float(v @ as_numpy(jtw).ravel())
            scale = float(np.linalg.norm(v) * np.linalg.norm(as_numpy(jtw)))
            if abs(left - right) > 1e-4 * scale:
                raise RuntimeError(
                    f"double backward disagrees with backward (<J v, w> = {left:.6g}, "
                    f"<v, J^T w> = {right:.6g}): a module of the model is not twice "
                    "differentiable (for example a custom Function marked once_differentiable)"
                )
            mu, *_, converged, _, _ = _power(jtj, rng.standard_normal(x0.numel()), tol, max_iter)
            sigma = math.sqrt(max(mu, 0.0))
        except (RuntimeError, NotImplementedError) as error:  # no double backward
            jacobian_reason = f"autograd: {str(error).splitlines()[0]}"

        top, hessian_reason = None, None
        if labels is not None:
            try:
                top = _torch_hessian(torch, model, x, labels, frozen, buffers, rng, tol, max_iter)
            except (RuntimeError, NotImplementedError) as error:
                hessian_reason = f"autograd: {str(error).splitlines()[0]}"
    finally:
        stack.close()
        for m, training in modes:
            m.train(training)
        if mha is not None:
            mha.set_fastpath_enabled(fastpath)
    return Diagnosis(
        tuple(layers),
        sigma,
        converged,
        top,
        int(x.shape[0]),
        "torch",
        jacobian_reason,
        hessian_reason,
    )


def _torch_hessian(
    torch: Any,
    model: Any,
    x: Any,
    labels: Any,
    frozen: dict[str, Any],
    buffers: dict[str, Any],
    rng: np.random.Generator,
    tol: float,
    max_iter: int,
) -> HessianEigenResult:
    """Return the Hessian's top eigenvalue, by power iteration on double-backward products."""
    from torch.func import functional_call

    names = [n for n, p in model.named_parameters() if p.requires_grad]
    if not names:
        raise ValueError("model has no trainable parameter (requires_grad) for the Hessian")
    params = {n: frozen[n].clone().requires_grad_(True) for n in names}
    state = {**frozen, **buffers, **params}
    logits = _first(functional_call(model, state, (x,)))
    if logits.ndim != 2 or logits.shape[0] != x.shape[0]:
        raise ValueError(
            "with labels, the model's output must be logits of shape (batch, classes), got "
            f"shape {tuple(logits.shape)}"
        )
    classes = logits.shape[1]
    if int(labels.min()) < 0 or int(labels.max()) >= classes:
        raise ValueError(
            f"labels must be class indices in 0..{classes - 1}, got values from "
            f"{int(labels.min())} to {int(labels.max())}"
        )
    loss = torch.nn.functional.cross_entropy(logits, labels)
    if not bool(torch.isfinite(loss)):
        raise ValueError(f"the loss on this batch is {float(loss)}: its curvature is undefined")
    tensors = list(params.values())
    grads = torch.autograd.grad(loss, tensors, create_graph=True, allow_unused=True)
    pairs = [(p, g) for p, g in zip(tensors, grads, strict=True)]
    sizes = [p.numel() for p in tensors]

    def hvp(v: np.ndarray) -> np.ndarray:
        pieces = np.split(v, np.cumsum(sizes)[:-1])
        dot = 0
        for (p, g), piece in zip(pairs, pieces, strict=True):
            if g is not None:
                w = torch.from_numpy(piece.reshape(p.shape)).to(p.dtype).to(p.device)
                dot = dot + (g * w).sum()
        out = None
        if isinstance(dot, torch.Tensor) and dot.requires_grad:
            out = torch.autograd.grad(dot, tensors, retain_graph=True, allow_unused=True)
        if out is None or all(o is None for o in out):
            if any(g is not None for g in grads):
                # The loss depends on the parameters but its gradient does not: the graph of
                # the gradient was cut (cross-entropy is never linear in the logits).
                raise RuntimeError(
                    "the gradient does not depend on the parameters: a module of the model is "
                    "not twice differentiable (for example a custom Function marked "
                    "once_differentiable)"
                )
            return np.zeros_like(v)
        return np.concatenate(
            [
                np.zeros(p.numel())
                if o is None
                else o.detach().to("cpu", torch.float64).numpy().ravel()
                for p, o in zip(tensors, out, strict=True)
            ]
        )

    mu, u, iterations, converged, residual, estimates = _power(
        hvp, rng.standard_normal(sum(sizes)), tol, max_iter
    )
    if converged:
        reason = f"residual {residual:.2e} <= tol * |eigenvalue| after {iterations} products"
    else:
        reason = (
            f"no convergence in {max_iter} products (residual {residual:.2e} > tol * "
            "|eigenvalue|): the two eigenvalues of largest modulus may be close"
        )
    return HessianEigenResult(
        eigenvalue=mu,
        eigenvector=u,
        iterations=iterations,
        converged=converged,
        residual=residual,
        estimates=estimates,
        loss=float(loss.detach()),
        gauss_newton=False,
        reason=reason,
    )


def diagnose(
    model: Any,
    x: Any,
    labels: Any = None,
    *,
    rng: np.random.Generator,
    activation: str | None = None,
    tol: float = 1e-4,
    max_iter: int = 1000,
) -> Diagnosis:
    r"""Run the book's checks at initialization on a network and a batch of its inputs.

    For every weight layer (``Linear``, ``Conv1d``, ``Conv2d``, ``Conv3d`` of a PyTorch model,
    in ``named_modules()`` order; every matrix of a numpy network) it records the spectral
    norm :math:`\sigma_{\max}(W)` of the weight reshaped to ``(fan_out, -1)``, the mean square
    of the layer's output on `x` and its variance across the inputs. Attention and recurrent
    modules give several records each, named by the module's qualified name and a suffix:

    - ``nn.MultiheadAttention`` ``attn`` (``batch_first`` or not): ``attn.in_proj[q]``,
      ``attn.in_proj[k]``, ``attn.in_proj[v]``, the three row blocks of the packed
      ``in_proj_weight`` (``attn.q_proj_weight``, ``attn.k_proj_weight``,
      ``attn.v_proj_weight`` when ``kdim`` or ``vdim`` differs from ``embed_dim``), whose mean
      square is that of the projected tokens :math:`X W_Q^\top + b_Q` (all heads; the module's
      inputs are caught by a hook), then ``attn.out_proj``, whose mean square is that of the
      module's first return value, the attention output (chapter "Attention"). ``out_proj``
      is not reported again as a ``Linear``.
    - ``nn.RNN``, ``nn.LSTM``, ``nn.GRU`` ``rnn`` (any ``num_layers``, ``bidirectional``,
      ``batch_first``): one record per weight matrix, ``rnn.weight_ih_l0``,
      ``rnn.weight_hh_l0``, ``rnn.weight_ih_l0_reverse``, ... in PyTorch's order (and
      ``weight_hr`` of an LSTM with ``proj_size``), each followed for an LSTM or GRU by one
      record per gate block, ``rnn.weight_hh_l0[i]``: PyTorch stacks the gates along the rows
      in the order i, f, g, o (input, forget, cell, output) for an LSTM and r, z, n (reset,
      update, new) for a GRU. Square recurrent blocks (a ``weight_hh`` of ``nn.RNN``, a gate's
      block of ``weight_hh``) also carry their spectral radius (chapter "Recurrent networks").
      Every record of the module carries the mean square of its output sequence (its first
      return value, both directions of the top layer).

    Outputs are read batch first, except those of attention and recurrent modules with
    ``batch_first=False`` and of the ``Linear`` layers of such a ``TransformerEncoderLayer`` or
    ``TransformerDecoderLayer``, read along their batch axis. Then

    - :math:`\sigma_{\max}(J)` of the input-output Jacobian at ``x[:1]`` (output and input
      flattened), by power iteration on :math:`J^\top J` with one Jacobian-vector and one
      vector-Jacobian product per step (exact SVD for a numpy network);
    - with `labels`, the eigenvalue of largest modulus of the Hessian of the mean softmax
      cross-entropy over ``(x, labels)`` with respect to every trainable parameter, by power
      iteration (Golub & Van Loan, *Matrix Computations*, 4th ed., 2013, section 7.3.1) on
      Hessian-vector products: double backward in PyTorch (Pearlmutter 1994), the R-operator
      of :func:`eiginit.hessian_vector_product` for numpy. Both stop when
      :math:`\|A u - \mu u\| \le tol\,|\mu|`.

    A PyTorch model is measured in evaluation mode, with PyTorch's fused transformer fast path
    off (it would skip the hooked submodules) and the math kernel of scaled dot-product
    attention (the fused CPU kernel has no double backward); its parameters, buffers, modes,
    ``requires_grad`` flags, hooks and ``.grad`` fields are left as they were (the computation
    runs on detached copies), and no ``.grad`` is left on `x`. If autograd still cannot
    differentiate a module twice, the Jacobian or the Hessian is None and
    ``Diagnosis.jacobian_reason`` or ``hessian_reason`` holds the error.

    Parameters
    ----------
    model : torch.nn.Module, eiginit.MLP, or list of numpy arrays
        The network. A list holds ``(fan_out, fan_in)`` weight matrices of a chain
        :math:`x_l = \phi(W_l x_{l-1})` with zero biases and a linear last layer; pass
        `activation`. A Keras ``Dense`` kernel is ``(fan_in, fan_out)``: transpose it. A
        PyTorch model that returns a tuple (``nn.LSTM``, ``nn.MultiheadAttention``) is read by
        its first element.
    x : torch.Tensor or array_like, shape (batch, ...)
        At least two inputs, batch first, as the model takes them.
    labels : array_like of int, shape (batch,), optional
        Class indices; the model's output is then read as logits ``(batch, classes)``.
    rng : numpy.random.Generator
        Draws the start vectors of the power iterations.
    activation : str, optional
        For a list of matrices: the hidden activation, one of :data:`eiginit.ACTIVATIONS`.
    tol : float, default 1e-4
        Relative residual tolerance of both power iterations, > 0.
    max_iter : int, default 1000
        The most products per power iteration, >= 1.

    Returns
    -------
    Diagnosis
        Print it, or show it in a notebook, for each number beside the chapter that explains it
        and the value it should have.

    Raises
    ------
    TypeError, ValueError
        For a model of another kind, a missing `activation`, a batch of fewer than two inputs or
        of the wrong shape, labels that are not one class index per input, a model without a
        weight layer, a weight layer its forward pass does not use, or a bad `rng`, `tol` or
        `max_iter`.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> weights = [rng.standard_normal((8, 8)) * np.sqrt(2 / 8) for _ in range(3)]
    >>> x, labels = rng.standard_normal((32, 8)), rng.integers(0, 8, 32)
    >>> d = diagnose(weights, x, labels, rng=rng, activation="relu")
    >>> [r.name for r in d.layers], d.hessian_top_eigenvalue.converged
    (['0', '1', '2'], True)
    >>> "Curvature at initialization (ch. 13)" in str(d)
    True

    A PyTorch LSTM gets one record per weight matrix and per gate, with the spectral radius
    of each recurrent block:

    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> class Reader(torch.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.rnn = torch.nn.LSTM(3, 5, batch_first=True)
    ...         self.head = torch.nn.Linear(5, 2)
    ...
    ...     def forward(self, x):
    ...         return self.head(self.rnn(x)[0][:, -1])
    >>> seq = torch.randn(8, 10, 3)
    >>> d = diagnose(Reader(), seq, rng=rng)
    >>> [r.name for r in d.layers][:3]
    ['rnn.weight_ih_l0', 'rnn.weight_ih_l0[i]', 'rnn.weight_ih_l0[f]']
    >>> d.layers[5].name, d.layers[5].spectral_radius is None
    ('rnn.weight_hh_l0', True)
    >>> d.layers[6].name, 0 < d.layers[6].spectral_radius < 1
    ('rnn.weight_hh_l0[i]', True)
    """
    check_rng(rng)
    tol = check_positive_float(tol, "tol")
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    if activation is not None and not isinstance(activation, str):
        raise TypeError(f"activation must be a string or None, got {_describe(activation)}")
    if _is_torch_module(model):
        if activation is not None:
            raise ValueError("activation is only for a list of matrices; a torch model has its own")
        return _diagnose_torch(model, x, labels, rng, tol, max_iter)
    net = _as_mlp(model, activation)
    if labels is not None and isinstance(labels, numbers.Number):
        raise TypeError(f"labels must be an array of class indices, got {_describe(labels)}")
    return _diagnose_mlp(net, x, labels, rng, tol, max_iter)
