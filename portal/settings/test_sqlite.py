"""The SQLite leg of the tests: the embedded default's database, everything else as in test.py.

Only tests marked ``sqlite`` run here (``make test`` runs them after the PostgreSQL suite):
the queries whose SQL differs between the two engines (JSON lookups, filters, ordering,
aggregates), so the demo's database cannot break silently.
"""

import tempfile
from pathlib import Path

from .test import *  # noqa: F403

_SQLITE_FILE = Path(tempfile.mkdtemp(prefix="portal-sqlite-")) / "test.sqlite3"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(_SQLITE_FILE),
        # The same options as the embedded default (portal/settings/base.py).
        "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        "TEST": {"NAME": str(_SQLITE_FILE)},
    },
}
