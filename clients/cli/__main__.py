"""``python -m clients.cli``: the same as the ``chat`` command."""

import sys

from clients.cli.main import main

sys.exit(main())
