"""Typed domain errors. They carry a stable code, never an HTTP status."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the core raises on purpose."""

    code = "domain_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidTransition(DomainError):
    """A post was asked to move to a state its current state does not lead to."""

    code = "invalid_transition"
