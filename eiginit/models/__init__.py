"""Network models and their initializers.

The initializers with torch.nn.init's names, and the networks the book builds: the MLP, the
Elman, LSTM and GRU networks, residual stacks, the 1-D CNN, attention and the transformer, and
the parametrizations (SP, muP).
"""
