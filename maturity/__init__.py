"""Maturity: the append-only record of each model's MLOps maturity level, its evidence,
and the dashboard."""
