"""Entry point of ``python -m diskstore`` and of the ``diskstore`` console script."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``diskstore`` command line (see :mod:`diskstore._cli`); return its exit status."""
    from ._cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
