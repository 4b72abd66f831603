"""``python -m broker`` runs the ``evb`` command line."""

import sys

from broker.cli import main

sys.exit(main())
