"""The pure core: sessionizer, de-duplication, attribution and channel rules (no I/O)."""
