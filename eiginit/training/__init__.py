"""The training engine, the comparison protocol and the studies.

One trainer for every model of the book (eiginit.training.engine), the protocol that turns
trained runs into verdicts (eiginit.training.protocol), the stored studies, and the first steps
of training (the first gradient step, LSUV).
"""
