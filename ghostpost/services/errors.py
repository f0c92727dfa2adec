"""Errors the services raise; each surface maps them to its own responses in one place."""

from __future__ import annotations

from ghostpost.domain.errors import DomainError
from ghostpost.domain.policy import Decision


class ServiceError(DomainError):
    """Base of the service-level errors."""

    code = "service_error"


class NotFound(ServiceError):
    """The object does not exist, or the actor may not know it exists."""

    code = "not_found"


class Forbidden(ServiceError):
    """The actor is known but may not do this."""

    code = "forbidden"


class Conflict(ServiceError):
    """The request clashes with the current state (overlapping window, wrong post state...)."""

    code = "conflict"


class ValidationFailed(ServiceError):
    """The input is malformed; `fields` maps field names to messages."""

    code = "validation_failed"

    def __init__(self, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.fields = fields or {}


def is_encodable(text: str) -> bool:
    """Tell whether text is valid Unicode (no lone surrogates), i.e. can be stored and hashed."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class PolicyRefused(ServiceError):
    """The disclosure policy refuses the post; the decision says why and by how much."""

    code = "policy_refused"

    def __init__(self, decision: Decision) -> None:
        assert decision.refusal is not None
        super().__init__(decision.refusal.message)
        self.decision = decision
        self.refusal_code = decision.refusal.code.value
