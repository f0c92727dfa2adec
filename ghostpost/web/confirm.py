"""A confirmation step for actions that one misclick must not do: the action's form posts
without `confirm=yes`, and the route answers with a page that says what will happen and
posts the same fields again, confirmed. Works without JavaScript."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import render_template, request

CONFIRMED = "yes"


def confirmed() -> bool:
    """Whether the submitted form carries the confirmation."""
    return request.form.get("confirm") == CONFIRMED


def confirm_page(
    *,
    heading: str,
    consequences: list[str],
    button: str,
    back: str,
    quote: str | None = None,
    undo: str | None = None,
) -> Any:
    """Render the confirmation for the current POST, re-posting its fields (not the token)."""
    fields: Mapping[str, str] = {
        name: value for name, value in request.form.items() if name not in ("csrf_token", "confirm")
    }
    return render_template(
        "confirm.html",
        heading=heading,
        consequences=consequences,
        quote=quote,
        undo=undo,
        button=button,
        back=back,
        action=request.path,
        fields=fields,
        confirm_value=CONFIRMED,
    )
