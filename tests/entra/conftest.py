"""The ``entra`` and ``entra_on`` fixtures live in tests/conftest.py (the portal, approvals
and browser tests use them too)."""
