"""``GET /docs``: the OpenAPI description as one self-contained page.

FastAPI's own ``/docs`` and ``/redoc`` load Swagger UI, ReDoc and fonts from public CDNs: offline
they show nothing, and online the browser tells those hosts that the server was opened, on a
page that promises nothing leaves the machine. This page is rendered here from the same
``openapi.json``, with no script and no outside resource.
"""

from __future__ import annotations

from html import escape

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;"
    "color:#1f2430}code{background:#f1f3f6;padding:0 .25rem}h2{margin-top:2rem;font-size:1.1rem}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccd;padding:.3rem .5rem;"
    "text-align:left;vertical-align:top}"
)


def api_page(schema: dict) -> str:
    """HTML of an OpenAPI ``schema``: each operation with its form fields and responses."""
    info = schema.get("info", {})
    parts = [
        f"<!doctype html><html lang=en><meta charset=utf-8><title>{escape(info.get('title', 'API'))}"
        f"</title><style>{STYLE}</style><h1>{escape(info.get('title', 'API'))}</h1>"
        f"<p>{escape(info.get('description', ''))}</p>"
        "<p>The machine-readable description: <a href=openapi.json>openapi.json</a>.</p>"
    ]
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            parts.append(operation_html(schema, method.upper(), path, operation))
    return "".join(parts) + "</html>"


def operation_html(schema: dict, method: str, path: str, operation: dict) -> str:
    text = [f"<h2><code>{method} {escape(path)}</code></h2>"]
    for key in ("summary", "description"):
        if operation.get(key):
            text.append(f"<p>{escape(operation[key])}</p>")
    fields = form_fields(schema, operation)
    if fields:
        rows = "".join(
            f"<tr><td><code>{escape(name)}</code>{' (required)' if required else ''}</td>"
            f"<td>{escape(kind)}</td><td>{escape(about)}</td></tr>"
            for name, kind, required, about in fields
        )
        text.append(f"<table><tr><th>field</th><th>type</th><th></th></tr>{rows}</table>")
    responses = "".join(
        f"<li><code>{escape(code)}</code> {escape(answer.get('description', ''))}"
        f"{' (' + ', '.join(map(escape, answer.get('content', {}))) + ')' if answer.get('content') else ''}</li>"
        for code, answer in operation.get("responses", {}).items()
    )
    return "".join(text) + (f"<ul>{responses}</ul>" if responses else "")


def form_fields(schema: dict, operation: dict) -> list[tuple[str, str, bool, str]]:
    """(name, type, required, description) of an operation's request body fields."""
    content = operation.get("requestBody", {}).get("content", {})
    body = next(iter(content.values()), {}).get("schema", {})
    body = resolve(schema, body)
    required = set(body.get("required", []))
    fields = []
    for name, field in body.get("properties", {}).items():
        field = resolve(schema, field)
        kinds = [resolve(schema, f).get("type", "") for f in field.get("anyOf", [field])]
        kind = " or ".join(k for k in kinds if k and k != "null") or "value"
        if field.get("format") == "binary" or "contentMediaType" in field:
            kind = "file"
        fields.append((name, kind, name in required, field.get("description", "")))
    return fields


def resolve(schema: dict, node: dict) -> dict:
    """``node``, or what its ``$ref`` ("#/components/schemas/Name") points at."""
    ref = node.get("$ref")
    if not ref:
        return node
    found = schema
    for key in ref.lstrip("#/").split("/"):
        found = found.get(key, {})
    return found
