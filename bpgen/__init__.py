"""bpgen: compile a network written as equations into standalone gradient code."""

from . import constants  # noqa: F401 - NumPy arrays in expressions become constants
from .dsl import Network
from .errors import BpgenError
from .explain import explain
from .functions import exp, log, logaddexp, relu, sigmoid, softplus, sqrt, step, tanh
from .ops import (concatenate, dot, einsum, index, log_softmax, logsumexp, matmul, max,
                  maximum, mean, min, minimum, one_hot, reshape, softmax, softmax_cross_entropy,
                  stack, sum, transpose)

__version__ = "0.1.0"

__all__ = ["Network", "BpgenError", "explain", "tanh", "exp", "log", "sqrt", "sigmoid", "relu",
           "softplus", "step", "logaddexp", "sum", "mean", "max", "min", "maximum",
           "minimum", "dot", "matmul", "einsum", "transpose", "reshape", "index",
           "concatenate", "stack", "one_hot", "logsumexp", "softmax", "log_softmax",
           "softmax_cross_entropy", "__version__"]
