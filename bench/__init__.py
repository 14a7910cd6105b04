"""Benchmarks: each module is run with `python -m bench.<name>`; see `--help`."""
