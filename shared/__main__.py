"""`python -m shared ...`: the command line (see shared/app/cli.py)."""

import sys

from shared.app.cli import main

if __name__ == "__main__":
    sys.exit(main())
