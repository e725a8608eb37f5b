"""Property-based differential testing on random networks (Hypothesis), one harness for
both kinds: networks of scalars (tests/randomnets.py) and networks with shaped values
(tests/randomtensors.py: layer stacks with matmuls on either side, tied weights, sums and
means over axes, softmax, transposes, scalar scales).

Each random network is compiled to both targets and its loss and gradients are checked
against central finite differences of an independent NumPy evaluation of the same
description (and, for scalar networks, against the HIPS `autograd` library differentiating
that evaluation). CI runs a fixed seed and example count; set BPGEN_RANDOM_NETS=500 for a
longer run. A failing example that Hypothesis shrinks belongs in tests/nets/ or
tests/tensor_nets/ as a regression test.
"""

import os

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

import randomnets
import randomtensors

EXAMPLES = int(os.environ.get("BPGEN_RANDOM_NETS", "45"))
COUNTER = {"n": 0}
KINDS = {"scalar": randomnets, "shaped": randomtensors}


@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.filter_too_much])
@given(drawn=st.one_of(st.tuples(st.just("scalar"), randomnets.descriptions()),
                       st.tuples(st.just("shaped"), randomtensors.descriptions())))
# Regression examples: a description that once failed (or that we want always checked)
# goes here, as Hypothesis printed it after shrinking.
@example(drawn=("scalar", {"inputs": 2, "params": 3, "reduce": "sum", "last_param": 1,
                           "equations": [("relu", 0, 1, 0, 1), ("product", 2, 0, 1, None),
                                         ("abs", 3, 2, 2, 0)]}))
@example(drawn=("shaped", {"shape": (1,), "layers": [("act", "ratio"), ("scale",)],
                           "reduce": "mean", "head": "mse", "classes": 2, "final": (1,)}))
def test_random_network_gradients(tmp_path, drawn):
    kind, desc = drawn
    module = KINDS[kind]
    COUNTER["n"] += 1
    folder = tmp_path / f"n{COUNTER['n']}"
    if kind == "scalar":
        problems = module.check(desc, folder, str(COUNTER["n"]))
        assume(problems is not None)  # an unusable draw (every sample near a kink)
    else:
        problems = module.check(desc, folder, str(COUNTER["n"]))
    assert not problems, "\n".join(problems) + "\n\n" + module.source(desc)
