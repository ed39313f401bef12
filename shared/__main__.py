"""`python -m shared ...`: the command line (see shared/cli.py)."""

import sys

from shared.cli import main

if __name__ == "__main__":
    sys.exit(main())
