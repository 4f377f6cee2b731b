"""``python -m ado_simulator``: run the ADO simulator standalone (no Django needed)."""

import sys

from .cli import main

sys.exit(main())
