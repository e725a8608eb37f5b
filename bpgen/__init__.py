"""bpgen: compile a network written as equations into standalone gradient code."""

from .dsl import Network
from .errors import BpgenError
from .explain import explain
from .functions import exp, log, logaddexp, relu, sigmoid, softplus, sqrt, step, tanh
from .ops import (dot, logsumexp, matmul, mean, softmax, softmax_cross_entropy, sum,
                  transpose)

__version__ = "0.1.0"

__all__ = ["Network", "BpgenError", "explain", "tanh", "exp", "log", "sqrt", "sigmoid", "relu",
           "softplus", "step", "logaddexp", "sum", "mean", "dot", "matmul", "transpose",
           "logsumexp", "softmax", "softmax_cross_entropy", "__version__"]
