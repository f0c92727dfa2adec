"""Pure domain: policy engine, length counting, post state machine, ledger hashing (stdlib only)."""
