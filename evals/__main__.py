"""python -m evals run ... (see evals/run.py)."""

import sys

from assistant import config


def main() -> int:
    try:
        config.load()
    except config.ConfigError as exc:  # one line per bad value, exit status 2, no traceback
        print(exc, file=sys.stderr)
        return 2
    from evals.run import main as run

    return run()


if __name__ == "__main__":
    sys.exit(main())
