"""Property-based differential testing on random networks (Hypothesis).

Each random network is compiled to both targets; its loss and gradients are checked
against (a) central finite differences of an independent NumPy evaluation of the same
description and (b) the HIPS `autograd` library differentiating that evaluation.
CI runs a fixed seed and example count; set BPGEN_RANDOM_NETS=500 for a longer run.
A failing example that Hypothesis shrinks belongs in tests/nets/ as a regression test.
"""

import os

from hypothesis import HealthCheck, assume, example, given, settings

from randomnets import check, descriptions, source

EXAMPLES = int(os.environ.get("BPGEN_RANDOM_NETS", "25"))
COUNTER = {"n": 0}


@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.filter_too_much])
@given(desc=descriptions())
# Regression examples: a description that once failed (or that we want always checked)
# goes here, as Hypothesis printed it after shrinking.
@example(desc={"inputs": 2, "params": 3, "reduce": "sum", "last_param": 1, "equations": [
    ("relu", 0, 1, 0, 1), ("product", 2, 0, 1, None), ("abs", 3, 2, 2, 0)]})
def test_random_network_gradients(tmp_path, desc):
    COUNTER["n"] += 1
    problems = check(desc, tmp_path / f"n{COUNTER['n']}", str(COUNTER["n"]))
    assume(problems is not None)
    assert not problems, "\n".join(problems) + "\n\n" + source(desc)
