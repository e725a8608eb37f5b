"""The README quotes generated code as "unedited": the quotes must match generated/."""

import re

from conftest import ROOT


def quoted_blocks():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for match in re.finditer(r"`generated/(\w+\.py)`, unedited\):?\n\n```python\n(.*?)```",
                             text, re.S):
        yield match.group(1), match.group(2)


def test_readme_quotes_of_generated_code_are_verbatim():
    blocks = list(quoted_blocks())
    assert {name for name, _ in blocks} == {"seed.py", "mlp.py"}
    for name, block in blocks:
        generated = (ROOT / "generated" / name).read_text(encoding="utf-8")
        lines = [ln for ln in block.splitlines() if ln.strip() != "..."]
        assert "\n".join(lines) in generated, name
