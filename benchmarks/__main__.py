"""``uv run python -m benchmarks [--quick]``: runs every benchmark (see `benchmarks.run`)."""

import sys

from benchmarks.run import main

sys.exit(main())
