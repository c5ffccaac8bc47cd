"""``python -m trickle`` runs the command line."""

import sys

from trickle.cli import main

sys.exit(main())
