"""Benchmarks, run on demand (bench/README.md); results go to docs/performance.md."""
