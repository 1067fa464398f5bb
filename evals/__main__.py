"""python -m evals run ... (see evals/run.py)."""

import sys

from evals.run import main

if __name__ == "__main__":
    sys.exit(main())
