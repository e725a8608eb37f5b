"""Property-based differential testing of networks with shaped values (Hypothesis).

Random layer stacks (matmuls on either side, tied weights, elementwise functions, scalar
scales, sums and means over axes of per-sample matrices, softmax, transposes; a softmax
cross-entropy, squared-error or log-sum-exp head) are compiled to both targets and checked
against central finite differences of an independent NumPy evaluation. CI runs a fixed
seed; set BPGEN_RANDOM_TENSOR_NETS=300 for a longer run.
"""

import os

from hypothesis import HealthCheck, given, settings

from randomtensors import check, descriptions, source

EXAMPLES = int(os.environ.get("BPGEN_RANDOM_TENSOR_NETS", "20"))
COUNTER = {"n": 0}


@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(desc=descriptions())
def test_random_tensor_network_gradients(tmp_path, desc):
    COUNTER["n"] += 1
    problems = check(desc, tmp_path / f"n{COUNTER['n']}", str(COUNTER["n"]))
    assert not problems, "\n".join(problems) + "\n\n" + source(desc)
