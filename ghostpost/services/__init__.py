"""Use cases: one function each, one transaction each, the ledger written in that transaction."""
