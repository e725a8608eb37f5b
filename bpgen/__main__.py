"""`python -m bpgen` is the `bpgen` command."""

import sys

from .cli import main

sys.exit(main())
