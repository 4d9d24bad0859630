"""``engine plugins doc TYPE``: a plugin's documentation made from its declaration (``PluginSpec``):
properties with their types, defaults and descriptions (``msgspec.Meta(description=...)``), outputs,
versions and an example (the plugin's own, else one built from its required properties)."""

from __future__ import annotations

import json
from typing import Any

import msgspec

from plugins.api import PluginSpec
from plugins.registry import LATEST, OLDEST, Registry

__all__ = ["plugin_doc", "render_doc"]

COMMON = (
    "id, type, version, description, disabled, allowFailure, allowWarning, timeout, retry, workerGroup, "
    "logLevel, logToFile, runIf, errors, finally"
)


def _fields(cls: type[msgspec.Struct] | None) -> list[dict[str, Any]]:
    if cls is None:
        return []
    (_ref,), components = msgspec.json.schema_components([cls], ref_template="#/$defs/{name}")
    body = components.get(cls.__name__, {})
    required = set(body.get("required", []))
    out = []
    for name, schema in body.get("properties", {}).items():
        field: dict[str, Any] = {"name": name, "type": _type_text(schema), "required": name in required}
        if "default" in schema:
            field["default"] = schema["default"]
        if schema.get("description"):
            field["description"] = schema["description"]
        out.append(field)
    return out


def _type_text(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return "object " + str(schema["$ref"]).rsplit("/", 1)[-1]
    if "enum" in schema:
        return "one of " + ", ".join(repr(v) for v in schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            parts = [_type_text(s) for s in schema[key]]
            return " | ".join(p for p in parts if p != "null") + (" (optional)" if "null" in parts else "")
    kind = schema.get("type")
    if kind == "array":
        return f"list of {_type_text(schema.get('items', {}))}"
    if kind == "object":
        values = schema.get("additionalProperties")
        return f"map of {_type_text(values)}" if isinstance(values, dict) and values else "map"
    if isinstance(kind, list):
        return " | ".join(str(k) for k in kind)
    return str(kind or "any")


def _example(spec: PluginSpec, fields: list[dict[str, Any]]) -> str:
    if spec.examples:
        return spec.examples[0]
    lines = ["id: my_task", f"type: {spec.type}"]
    for field in fields:
        if field["required"]:
            lines.append(f"{field['name']}: {_placeholder(field['type'])}")
    return "\n".join(lines) + "\n"


def _placeholder(type_text: str) -> str:
    if type_text.startswith("list"):
        return "[]"
    if type_text.startswith(("map", "object")):
        return "{}"
    if type_text.startswith("integer"):
        return "1"
    if type_text.startswith("boolean"):
        return "true"
    return '"..."'


def plugin_doc(spec: PluginSpec, registry: Registry) -> dict[str, Any]:
    """The documentation of ``spec`` as a document (``--output json``)."""
    fields = _fields(spec.props)
    return {
        "type": spec.type,
        "kind": spec.kind,
        "aliases": list(spec.aliases),
        "version": spec.version,
        "versions": registry.versions(spec.type),
        "description": spec.description,
        "properties": fields,
        "outputs": _fields(spec.outputs) if spec.outputs is not None else None,
        "branches": list(spec.branches),
        "examples": list(spec.examples) or [_example(spec, fields)],
    }


def render_doc(doc: dict[str, Any]) -> str:
    """The documentation as text for a terminal."""
    out = [f"{doc['type']} ({doc['kind']})"]
    if doc["version"]:
        others = ", ".join(doc["versions"])
        out.append(f"version {doc['version']} (installed: {others}; a task picks one with `version:`)")
    if doc["aliases"]:
        out.append("aliases: " + ", ".join(doc["aliases"]))
    if doc["description"]:
        out += ["", doc["description"]]
    out += ["", "Properties:"]
    if not doc["properties"]:
        out.append("  (none of its own)")
    for field in doc["properties"]:
        flags = (
            "required"
            if field["required"]
            else f"default {json.dumps(field['default'])}"
            if "default" in field
            else ""
        )
        out.append(f"  {field['name']}: {field['type']}" + (f"  [{flags}]" if flags else ""))
        if field.get("description"):
            out.append(f"      {field['description']}")
    if doc["branches"]:
        out.append("  task lists: " + ", ".join(doc["branches"]))
    out.append(f"  and every task's: {COMMON} (version: an installed one, {LATEST} or {OLDEST})")
    out += ["", "Outputs:"]
    if doc["outputs"] is None:
        out.append("  (not declared by the plugin)")
    else:
        for field in doc["outputs"]:
            out.append(f"  {field['name']}: {field['type']}")
            if field.get("description"):
                out.append(f"      {field['description']}")
    out += ["", "Example:"]
    out += ["  " + line for line in doc["examples"][0].rstrip("\n").splitlines()]
    return "\n".join(out) + "\n"
