"""bpgen: compile a network written as equations into standalone gradient code."""

from .dsl import Network
from .errors import BpgenError
from .functions import exp, log, relu, sigmoid, softplus, sqrt, step, tanh

__version__ = "0.1.0"

__all__ = ["Network", "BpgenError", "tanh", "exp", "log", "sqrt", "sigmoid", "relu",
           "softplus", "step", "__version__"]
