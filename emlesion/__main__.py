"""``python -m emlesion``: the command line (:func:`emlesion.cli.main`)."""

import sys

from emlesion.cli import main

sys.exit(main())
