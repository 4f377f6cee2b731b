"""``python -m artifactory_simulator``: run the Artifactory stand-in standalone."""

import sys

from .cli import main

sys.exit(main())
