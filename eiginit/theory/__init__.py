"""Theory of the initialized network.

Mean field (the order-to-chaos edge), signal propagation through the layers, curvature (exact
Hessian-vector products and the Hessian's extreme eigenvalues) and shattered gradients.
"""
