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


#: Controls a person's text may hold: tab, line feed, carriage return.
_ALLOWED_CONTROLS = frozenset("\t\n\r")
#: Bidi embeddings, overrides and isolates, and the control that closes each.
_BIDI_CLOSER = {
    "\u202a": "\u202c",
    "\u202b": "\u202c",
    "\u202d": "\u202c",
    "\u202e": "\u202c",
    "\u2066": "\u2069",
    "\u2067": "\u2069",
    "\u2068": "\u2069",
}
_BIDI_CLOSERS = frozenset(_BIDI_CLOSER.values())


def text_problem(text: str) -> str | None:
    """Say why `text` may not be stored and published as given, or return None if it may.

    Refused: lone surrogates (not Unicode), C0 control characters other than tab and line
    breaks and DEL (NUL cannot be stored in PostgreSQL text; the others make the published
    text differ from the preview), and bidi embeddings, overrides or isolates left open or
    closing nothing: left open they reverse what follows on screen, the appended #team too.
    Positions count code points from 1.
    """
    if not is_encodable(text):
        return "contains invalid Unicode (a lone surrogate)"
    opened: list[tuple[str, int]] = []
    for position, char in enumerate(text, start=1):
        if (char < " " and char not in _ALLOWED_CONTROLS) or char == "\x7f":
            return f"contains the control character U+{ord(char):04X} at position {position}"
        if char in _BIDI_CLOSER:
            opened.append((char, position))
        elif char in _BIDI_CLOSERS:
            if not opened or _BIDI_CLOSER[opened[-1][0]] != char:
                return (
                    f"has the bidi control U+{ord(char):04X} at position {position} closing nothing"
                )
            opened.pop()
    if opened:
        char, position = opened[-1]
        return (
            f"leaves the bidi control U+{ord(char):04X} at position {position} open "
            "(it would reverse what follows, the disclosure too)"
        )
    return None


class PolicyRefused(ServiceError):
    """The disclosure policy refuses the post; the decision says why and by how much."""

    code = "policy_refused"

    def __init__(self, decision: Decision) -> None:
        assert decision.refusal is not None
        super().__init__(decision.refusal.message)
        self.decision = decision
        self.refusal_code = decision.refusal.code.value


class MediaUnavailable(ServiceError):
    """A stored image is missing, or its bytes no longer match their content hash."""

    code = "media_unavailable"
