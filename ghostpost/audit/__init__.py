"""Ledger integrity and audit exports: the export format, signing keys, the offline verifier.

Nothing is imported here, so `ghostpost.audit.format` and `ghostpost.audit.verify` load with the
standard library, `cryptography` and ghostpost.domain only.
"""
