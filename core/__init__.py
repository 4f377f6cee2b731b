"""The portal's kernel: what every app shares (access and roles, leases, listing, CSV, the
API's error body, sync bookkeeping, task queueing, errors, Entra/HTTP clients).

It imports no app of the project (an import-linter contract in pyproject.toml checks it), so
any app may build on it and the apps' import order stays one way: docs/architecture.md.
"""
