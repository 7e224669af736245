"""Long-running reliability scripts (not collected by pytest): `python -m tests.stress.X`."""
