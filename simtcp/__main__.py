"""``python -m simtcp`` is the ``simtcp`` command."""

import sys

from .programs.cli import main

sys.exit(main())
