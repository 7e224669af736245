"""Keyed hashing, pseudonymous ids, daily salts, secret files, redaction, country lookup."""
