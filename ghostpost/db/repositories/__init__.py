"""SQLAlchemy implementations of the repository ports in ghostpost.services.ports.

One module per aggregate: people (principals, users, assignments), accounts, windows
(and proposals), posts, ledger (entries, head, checkpoints), clients (API clients, tokens).
"""
