"""eiginit: neural-network weight initialization explained through eigenvalues.

The package behind the executable textbook in ``book/``. Each module serves a part of the book:

- :mod:`eiginit.linalg.power`: repeated multiplication and power iteration (Part I).
- :mod:`eiginit.models.network`: a small numpy multilayer perceptron with backward pass and Jacobian
  (Parts III and IV).
- :mod:`eiginit.theory.meanfield`: mean-field signal propagation, q*, chi_1 and the edge of chaos
  (Part III).
- :mod:`eiginit.linalg.subspace`: subspace iteration and matrices with a chosen spectrum (Part I).
- :mod:`eiginit.linalg.norms`: the spectral norm and transient growth of matrix powers (Part I).
- :mod:`eiginit.linalg.spectra`: Gaussian matrices and the laws of their spectra (Part II).
- :mod:`eiginit.plotting`: the book's single plotting style.
- :mod:`eiginit.training.protocol`: the comparison protocol's statistics: Welch intervals, Holm's
  correction and verdicts that call a tie a tie.
- :mod:`eiginit.claims`: ``claim`` and ``compare``, which make a sentence about a computed
  result fail the build when the numbers contradict it.
- :mod:`eiginit.notebook`: ``glue``, which hands a chapter's numbers to the book, or prints them
  when a downloaded chapter runs without Sphinx.
- :mod:`eiginit.data`: the seed blog post's matrix.
- :mod:`eiginit.datasets`: the 8 x 8 digits and MNIST-1D, made offline, split and standardized
  (Parts IV and V).
- :mod:`eiginit.models.losses`: softmax cross-entropy and accuracy on logits;
:mod:`eiginit.training.first_steps`: the
  first step's diagnostics and LSUV (Part IV).
- :mod:`eiginit.training.engine`: one training engine for every architecture: a model protocol for
  replica-stacked networks, SGD-momentum and Adam written once, ``fit`` with per-replica seeds,
  rates and per-layer multipliers, early stopping and divergence marking, one result type, and
  the MLP, muP network, Elman RNN, 1-D CNN and residual classifier as models (Parts IV and V).
- :mod:`eiginit.training.study`: the contenders, cells and stored results of the training study
(Part IV).
- :mod:`eiginit.models.initializers`: torch.nn.init's initializers, Keras's variance scaling and the
  seed's spectral-radius recipe (Part III on).
- :mod:`eiginit.linalg.lyapunov`: Lyapunov exponents of products of different matrices (Part III).
- :mod:`eiginit.linalg.deep_products`: singular values of long matrix products from their factors,
  accurate where a direct SVD of the formed product is not (Part V).
- :mod:`eiginit.theory.shattering`: gradients along a line of inputs, with and without centred
units,
  for the shattered-gradients experiment (Part V).
- :mod:`eiginit.theory.propagation`: per-layer activation and gradient variances, measured and
  predicted (Part III).
- :mod:`eiginit.models.recurrent`: echo-state reservoirs, memory capacity, the Fisher memory curve
and
  a numpy Elman network trained by backpropagation through time (Part V).
- :mod:`eiginit.models.gated`: LSTM and GRU networks as models of the engine, with PyTorch's,
Keras's
  and the chrono initialization; ``eiginit.training.gated_study`` trains them on the adding problem
  (Part V).
- :mod:`eiginit.theory.curvature`: exact Hessian-vector products of the training loss and the
  Hessian's top eigenvalue by power iteration (Part V).
- :mod:`eiginit.models.convolution`: convolution layers as matrices, their spectrum by the FFT,
  delta-orthogonal kernels, framework fans and a small numpy 1-D CNN (Part V).
- :mod:`eiginit.models.parametrization`: initialization scales and learning rates by width, SP
against
  muP, the coordinate check and batched training of many replicas (Part V).
- :mod:`eiginit.diagnose`: the book's checks at initialization on a reader's own PyTorch or numpy
  network (the practitioner's guide).
- :mod:`eiginit.models.attention`: self-attention at initialization: row-stochastic attention
  matrices, their second eigenvalue, rank collapse, the logits' variance, the attention
  entropy and sigma-Reparam (Part V).
- :mod:`eiginit.models.transformer`: a small Pre-LN transformer as a model of the engine, the
  initializations people use for it (PyTorch's modules, GPT-2, GPT-NeoX) and an associative
  recall task (Part V).
- :mod:`eiginit.models.residual`: residual stacks with branch multipliers, batch and layer
  normalization at initialization, Fixup, and a batched training loop for residual MLPs (Part V).

Every public function checks its input and raises :class:`TypeError` or :class:`ValueError`
saying what it received and what it expected; every function that draws takes an explicit
``rng: numpy.random.Generator``.
"""

from eiginit.claims import ClaimError, claim, compare
from eiginit.data import seed_matrix
from eiginit.datasets import Dataset, load_digits, load_mnist1d, standardize, stratified_split
from eiginit.diagnose import Diagnosis, LayerReport, diagnose
from eiginit.linalg.deep_products import ProductSpectrum, product_singular_values
from eiginit.linalg.lyapunov import (
    LogNormMoments,
    LyapunovSpectrum,
    digamma_half,
    gaussian_log_norm_moments,
    gaussian_lyapunov_spectrum,
    log_norm_growth,
    lyapunov_exponents,
    lyapunov_spectrum,
    trigamma_half,
)
from eiginit.linalg.norms import SpectralNormResult, spectral_norm, transient_growth
from eiginit.linalg.power import (
    PowerIterationResult,
    Trajectory,
    dominant_is_real,
    iterate,
    normalize_spectral_radius,
    power_iteration,
    spectral_radius,
)
from eiginit.linalg.spectra import (
    circular_law_cdf,
    expected_real_eigenvalues,
    ginibre,
    marchenko_pastur_pdf,
    prob_all_real,
    quarter_circle_pdf,
)
from eiginit.linalg.subspace import (
    SubspaceIterationResult,
    matrix_with_spectrum,
    subspace_iteration,
)

# The modules that chapters import by name (``from eiginit import initializers as ini``); every
# other public name above is imported from the top level.
from eiginit.models import initializers as initializers
from eiginit.models import residual as residual
from eiginit.models.attention import (
    AttentionStackResult,
    SigmaReparamStep,
    attention_entropy,
    attention_logits,
    attention_matrix,
    attention_stack,
    logit_variance,
    rank_collapse_residual,
    second_eigenvalue_modulus,
    sigma_reparam,
    softmax_rows,
)
from eiginit.models.convolution import (
    CNN1d,
    ConvFans,
    conv1d,
    conv1d_backward,
    conv_eigenvalues,
    conv_fans,
    conv_frequency_blocks,
    conv_operator,
    conv_singular_values,
    delta_orthogonal,
    spread_orthogonal,
)
from eiginit.models.gated import GATED_CELLS, GATED_SCHEMES, GatedRNNModel, gated_init
from eiginit.models.initializers import (
    KERAS_TRUNCATED_NORMAL_STD,
    calculate_fan_in_and_fan_out,
    calculate_gain,
    kaiming_normal,
    kaiming_uniform,
    lecun_normal,
    lecun_uniform,
    normal,
    orthogonal,
    spectral_radius_normal,
    torch_linear_default,
    trunc_normal,
    uniform,
    variance_scaling,
    xavier_normal,
    xavier_uniform,
)
from eiginit.models.losses import accuracy, softmax_cross_entropy
from eiginit.models.network import (
    ACTIVATIONS,
    MLP,
    ForwardPass,
    Gradients,
    activation_derivative,
    apply_activation,
)
from eiginit.models.parametrization import (
    PARAMETRIZATIONS,
    ROLES,
    CoordinateCheck,
    LayerScale,
    coordinate_check,
    forward_replicas,
    init_weights,
    layer_scale,
    loss_and_gradients,
    parametrize,
)
from eiginit.models.recurrent import (
    ElmanRNN,
    MemoryCapacity,
    RNNForwardPass,
    RNNGradients,
    adding_problem,
    echo_state_reservoir,
    fisher_memory,
    memory_capacity,
)
from eiginit.models.residual import (
    NORMALIZATIONS,
    SCHEMES,
    ResidualClassifier,
    ResidualForward,
    ResidualGradients,
    ResidualStack,
    batch_norm,
    fixup_scale,
    layer_norm,
    layer_norm_vjp,
    mean_square_profile,
    residual_block_jacobians,
    residual_classifier,
    residual_variance,
)
from eiginit.models.transformer import (
    TRANSFORMER_INITS,
    TransformerModel,
    associative_recall,
    framework_attention_defaults,
    init_transformer,
)
from eiginit.notebook import glue
from eiginit.plotting import PALETTE, use_book_style
from eiginit.theory.curvature import (
    HessianEigenResult,
    HessianSpectrumEnds,
    flatten_parameters,
    hessian_extreme_eigenvalues,
    hessian_top_eigenvalue,
    hessian_vector_product,
    loss_and_gradient,
    sharpness_monitor,
    unflatten_parameters,
)
from eiginit.theory.meanfield import MeanField, critical_sigma_w2, mean_field, q_star
from eiginit.theory.propagation import (
    PropagationStats,
    VarianceRecursion,
    activation_function,
    gaussian_expectation,
    propagate,
    variance_recursion,
)
from eiginit.theory.shattering import line_input_gradients
from eiginit.training import engine as engine
from eiginit.training import gated_study as gated_study
from eiginit.training import protocol as protocol
from eiginit.training import study as study
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
from eiginit.training.first_steps import FirstStep, LSUVResult, first_step, lsuv
from eiginit.training.protocol import (
    Comparison,
    RateChoice,
    Trial,
    Welch,
    choose_rate,
    holm,
    resolvable_difference,
    run_trial,
    seeds_needed,
    student_t_quantile,
    verdict_table,
    verdicts,
    welch,
)
from eiginit.training.study import Contender, StudyCell, build_contender, contenders, run_cell

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS",
    "GATED_CELLS",
    "GATED_SCHEMES",
    "KERAS_TRUNCATED_NORMAL_STD",
    "MLP",
    "NORMALIZATIONS",
    "PALETTE",
    "PARAMETRIZATIONS",
    "ROLES",
    "SCHEMES",
    "TRANSFORMER_INITS",
    "AttentionStackResult",
    "CNN1d",
    "CNNModel",
    "ClaimError",
    "Comparison",
    "Contender",
    "ConvFans",
    "CoordinateCheck",
    "Dataset",
    "Diagnosis",
    "ElmanRNN",
    "FirstStep",
    "FitResult",
    "ForwardPass",
    "GatedRNNModel",
    "Gradients",
    "HessianEigenResult",
    "HessianSpectrumEnds",
    "LSUVResult",
    "LayerReport",
    "LayerScale",
    "LogNormMoments",
    "LyapunovSpectrum",
    "MLPModel",
    "MeanField",
    "MemoryCapacity",
    "Model",
    "MuPModel",
    "Optimizer",
    "PowerIterationResult",
    "ProductSpectrum",
    "PropagationStats",
    "RNNForwardPass",
    "RNNGradients",
    "RNNModel",
    "RateChoice",
    "ResidualClassifier",
    "ResidualForward",
    "ResidualGradients",
    "ResidualModel",
    "ResidualStack",
    "SigmaReparamStep",
    "SpectralNormResult",
    "StudyCell",
    "SubspaceIterationResult",
    "Trajectory",
    "TransformerModel",
    "Trial",
    "VarianceRecursion",
    "Welch",
    "accuracy",
    "activation_derivative",
    "activation_function",
    "adding_problem",
    "apply_activation",
    "associative_recall",
    "attention_entropy",
    "attention_logits",
    "attention_matrix",
    "attention_stack",
    "batch_norm",
    "build_contender",
    "calculate_fan_in_and_fan_out",
    "calculate_gain",
    "choose_rate",
    "circular_law_cdf",
    "claim",
    "compare",
    "contenders",
    "conv1d",
    "conv1d_backward",
    "conv_eigenvalues",
    "conv_fans",
    "conv_frequency_blocks",
    "conv_operator",
    "conv_singular_values",
    "coordinate_check",
    "critical_sigma_w2",
    "delta_orthogonal",
    "diagnose",
    "digamma_half",
    "dominant_is_real",
    "echo_state_reservoir",
    "expected_real_eigenvalues",
    "first_step",
    "fisher_memory",
    "fit",
    "fixup_scale",
    "flatten_parameters",
    "forward_replicas",
    "framework_attention_defaults",
    "gated_init",
    "gaussian_expectation",
    "gaussian_log_norm_moments",
    "gaussian_lyapunov_spectrum",
    "ginibre",
    "glue",
    "hessian_extreme_eigenvalues",
    "hessian_top_eigenvalue",
    "hessian_vector_product",
    "holm",
    "init_transformer",
    "init_weights",
    "iterate",
    "kaiming_normal",
    "kaiming_uniform",
    "layer_norm",
    "layer_norm_vjp",
    "layer_scale",
    "lecun_normal",
    "lecun_uniform",
    "line_input_gradients",
    "load_digits",
    "load_mnist1d",
    "log_norm_growth",
    "logit_variance",
    "loss_and_gradient",
    "loss_and_gradients",
    "lsuv",
    "lyapunov_exponents",
    "lyapunov_spectrum",
    "marchenko_pastur_pdf",
    "matrix_with_spectrum",
    "mean_field",
    "mean_square_profile",
    "memory_capacity",
    "normal",
    "normalize_spectral_radius",
    "orthogonal",
    "parametrize",
    "power_iteration",
    "prob_all_real",
    "product_singular_values",
    "propagate",
    "q_star",
    "quarter_circle_pdf",
    "rank_collapse_residual",
    "replica_sharpness",
    "residual_block_jacobians",
    "residual_classifier",
    "residual_variance",
    "resolvable_difference",
    "run_cell",
    "run_trial",
    "second_eigenvalue_modulus",
    "seed_matrix",
    "seeds_needed",
    "sharpness_monitor",
    "sigma_reparam",
    "softmax_cross_entropy",
    "softmax_rows",
    "spectral_norm",
    "spectral_radius",
    "spectral_radius_normal",
    "spread_orthogonal",
    "standardize",
    "stratified_split",
    "student_t_quantile",
    "subspace_iteration",
    "torch_linear_default",
    "transient_growth",
    "trigamma_half",
    "trunc_normal",
    "unflatten_parameters",
    "uniform",
    "use_book_style",
    "variance_recursion",
    "variance_scaling",
    "verdict_table",
    "verdicts",
    "welch",
    "xavier_normal",
    "xavier_uniform",
]
