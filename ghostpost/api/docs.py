"""The OpenAPI document and its human-readable page, both public (no token needed).

The page is rendered on the server from the same document (the CSP allows no inline script
and ghostpost loads nothing from a CDN): every operation with its scope, parameters, body,
responses and example, then every schema.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Blueprint, Flask, Response, current_app, render_template
from markupsafe import Markup, escape

bp = Blueprint("api_v1_docs", __name__, url_prefix="/api/v1")

_METHODS = ("get", "post", "put", "patch", "delete")
_REF = "#/components/"


def openapi_document(app: Flask) -> dict[str, Any]:
    """Return the app's OpenAPI document, as plain JSON data (built once per app)."""
    cached: dict[str, Any] | None = app.extensions.get("ghostpost.openapi")
    if cached is None:
        api = app.extensions["flask-smorest"]["apis"][""]["ext_obj"]
        cached = json.loads(json.dumps(api.spec.to_dict()))
        app.extensions["ghostpost.openapi"] = cached
    return cached


@bp.get("/openapi.json")
def openapi_json() -> Response:
    """Serve the OpenAPI 3 document."""
    response = current_app.json.response(openapi_document(current_app))
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/docs")
def docs_page() -> str:
    """Render the document as one HTML page."""
    return render_template("api_docs.html", doc=describe(openapi_document(current_app)))


def prose(text: str | None) -> Markup:
    """Render the document's small Markdown subset (paragraphs, **bold**, `code`) safely."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", (text or "").strip()):
        html = str(escape(" ".join(block.split())))
        html = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html)
        html = re.sub(r"`(.+?)`", r"<code>\1</code>", html)
        paragraphs.append(f"<p>{html}</p>")
    return Markup("".join(paragraphs))


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _resolve(document: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    ref = item.get("$ref")
    if not isinstance(ref, str) or not ref.startswith(_REF):
        return item
    section, _, name = ref[len(_REF) :].partition("/")
    found: dict[str, Any] = document.get("components", {}).get(section, {}).get(name, {})
    return found


def type_of(schema: dict[str, Any]) -> Markup:
    """Describe a schema's type in a few words, linking named schemas."""
    if "$ref" in schema:
        name = _ref_name(schema["$ref"])
        return Markup('<a href="#schema-{0}">{0}</a>').format(name)
    for combiner in ("allOf", "anyOf", "oneOf"):
        if combiner in schema:
            parts = [type_of(part) for part in schema[combiner]]
            text = Markup(" | ").join(parts)
            return text + (Markup(" or null") if schema.get("nullable") else Markup(""))
    kind = schema.get("type", "any")
    if kind == "array":
        text = Markup("array of ") + type_of(schema.get("items", {}))
    elif kind == "object" and "additionalProperties" in schema:
        values = schema["additionalProperties"]
        inner = type_of(values) if isinstance(values, dict) else Markup("any")
        text = Markup("object of ") + inner
    else:
        text = escape(kind)
        if "format" in schema:
            text += Markup(" ({})").format(schema["format"])
    if schema.get("nullable"):
        text += Markup(" or null")
    return text


def constraints(schema: dict[str, Any]) -> str:
    """List a schema's constraints: enum, lengths, ranges, pattern, default."""
    notes = []
    if "enum" in schema:
        notes.append("one of " + ", ".join(json.dumps(v) for v in schema["enum"]))
    for key, label in (
        ("minLength", "min length"),
        ("maxLength", "max length"),
        ("minimum", "min"),
        ("maximum", "max"),
        ("pattern", "pattern"),
        ("default", "default"),
    ):
        if key in schema:
            notes.append(f"{label} {schema[key]}")
    return "; ".join(notes)


def _fields(schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(schema.get("required", []))
    return [
        {
            "name": name,
            "type": type_of(prop),
            "required": name in required,
            "description": prose(prop.get("description")),
            "constraints": constraints(prop),
            "example": json.dumps(prop["example"]) if "example" in prop else "",
        }
        for name, prop in schema.get("properties", {}).items()
    ]


def _parameters(document: dict[str, Any], items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for item in items:
        param = _resolve(document, item)
        schema = param.get("schema", {})
        found.append(
            {
                "name": param.get("name", ""),
                "where": param.get("in", ""),
                "required": bool(param.get("required")),
                "type": type_of(schema),
                "constraints": constraints(schema),
                "description": prose(param.get("description")),
            }
        )
    return found


def _responses(document: dict[str, Any], responses: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for status, item in sorted(responses.items()):
        response = _resolve(document, item)
        content = response.get("content", {})
        media = next(iter(content), "")
        found.append(
            {
                "status": status,
                "description": response.get("description", ""),
                # Every media type (an export answers CSV or JSONL); the type is the first's.
                "media": " or ".join(content),
                "type": type_of(content[media].get("schema", {})) if media else "",
                "headers": sorted(response.get("headers", {})),
            }
        )
    return found


def describe(document: dict[str, Any]) -> dict[str, Any]:
    """Turn an OpenAPI document into what the docs template shows."""
    operations = []
    for path, item in document.get("paths", {}).items():
        shared = item.get("parameters", [])
        for method in _METHODS:
            op = item.get(method)
            if op is None:
                continue
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            scopes = [s for req in op.get("security", []) for v in req.values() for s in v]
            operations.append(
                {
                    "anchor": f"{method}-{path}".replace("/", "-").strip("-"),
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "description": prose(op.get("description")),
                    "scopes": scopes,
                    "parameters": _parameters(document, shared + op.get("parameters", [])),
                    "body_type": type_of(body.get("schema", {})) if body else None,
                    "body_example": json.dumps(body["example"], indent=2)
                    if body and "example" in body
                    else None,
                    "responses": _responses(document, op.get("responses", {})),
                }
            )
    schemes = document.get("components", {}).get("securitySchemes", {})
    flows = [
        {
            "name": name,
            "flow": flow_name,
            "token_url": flow.get("tokenUrl"),
            "scopes": flow.get("scopes", {}),
        }
        for name, scheme in schemes.items()
        for flow_name, flow in scheme.get("flows", {}).items()
    ]
    schemas = [
        {"name": name, "description": prose(schema.get("description")), "fields": _fields(schema)}
        for name, schema in sorted(document.get("components", {}).get("schemas", {}).items())
    ]
    info = document.get("info", {})
    return {
        "title": info.get("title", "API"),
        "version": info.get("version", ""),
        "openapi": document.get("openapi", ""),
        "description": prose(info.get("description")),
        "flows": flows,
        "operations": operations,
        "schemas": schemas,
    }
