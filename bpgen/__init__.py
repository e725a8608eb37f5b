"""bpgen: compile a network written as equations into standalone gradient code."""

from .dsl import Network
from .errors import BpgenError
from .explain import explain
from .functions import exp, log, logaddexp, relu, sigmoid, softplus, sqrt, step, tanh

__version__ = "0.1.0"

__all__ = ["Network", "BpgenError", "explain", "tanh", "exp", "log", "sqrt", "sigmoid", "relu",
           "softplus", "step", "logaddexp", "__version__"]
