"""``python -m goth_actors._cli``: the ``goth-actors`` command."""

import sys

from goth_actors._cli import main

if __name__ == "__main__":
    sys.exit(main())
