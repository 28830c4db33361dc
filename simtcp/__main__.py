"""``python -m simtcp`` is the ``simtcp`` command."""

import sys

from .cli import main

sys.exit(main())
