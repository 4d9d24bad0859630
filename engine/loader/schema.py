"""JSON Schema (draft 2020-12) of the flow YAML, for editors (e.g. the YAML language server).

Built from the same Structs the loader uses: the flow model (``engine.model``, field names
turned back into Kestra's camelCase) and every registered plugin's ``props`` Struct (through
``msgspec.json.schema_components``). Tasks are a ``oneOf`` discriminated by ``type`` (canonical
name, aliases and legacy ``io.kestra.core.tasks.*`` names). Every plugin property also accepts an
expression string (``{{ ... }}``), rendered at run time.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from engine.core.model import Concurrency, Retry
from engine.loader.inputs import INPUT_EXTRA, INPUT_TYPES
from engine.loader.plugin_rules import LOG_LEVELS, schema_rules
from plugins.api import PluginSpec
from plugins.registry import _LEGACY_PREFIXES, LATEST, OLDEST, Registry, default_registry

__all__ = ["flow_json_schema"]

_EXPRESSION = {"type": "string", "pattern": r"\{\{|\{%", "description": "An expression rendered at run time"}
_DURATION = {
    "type": "string",
    "pattern": r"^[Pp](?:\d+(?:[.,]\d+)?[WwDd])*(?:[Tt](?:\d+(?:[.,]\d+)?[HhMmSs])+)?$",
    "description": "ISO-8601 duration, e.g. PT30S, PT5M, PT1H30M, P1D",
}
_WHOLE_NUMBER = {"type": "string", "pattern": r"^\s*\d+\s*$"}
_DURATION_FIELDS = {"interval", "max_interval", "min_interval", "max_duration", "timeout"}
_TASK_LIST = {"type": "array", "items": {"$ref": "#/$defs/Task"}}
_BRANCH_LIST = {"type": ["array", "null"], "items": {"$ref": "#/$defs/Task"}}


def _object(properties: dict[str, Any], required: list[str], *, closed: bool = True) -> dict[str, Any]:
    """An object schema; ``closed`` when the loader reports any other property as unknown."""
    out: dict[str, Any] = {"type": "object", "properties": properties, "required": required}
    if closed:
        out["additionalProperties"] = False
    return out


def _list_of(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


_STRINGS = _list_of({"type": "string"})


def _camel(name: str) -> str:
    head, *rest = name.rstrip("_").split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _model_object(cls: type[msgspec.Struct], *, enums: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """Object schema for a model Struct in Kestra camelCase; duration fields as ISO strings."""
    (_schema,), components = msgspec.json.schema_components([cls], ref_template="#/$defs/{name}")
    body = components[cls.__name__]
    props: dict[str, Any] = {}
    for f in msgspec.structs.fields(cls):
        if f.name in _DURATION_FIELDS:
            sub: dict[str, Any] = dict(_DURATION)
        else:
            sub = dict(body["properties"].get(f.encode_name, {}))
            sub.pop("default", None)
        if enums and f.name in enums:
            sub = {"enum": enums[f.name]}
        props[_camel(f.name)] = sub
    required = [_camel(n) for n in body.get("required", [])]
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        out["required"] = required
    return out


def _type_names(spec: PluginSpec, registry: Registry) -> list[str]:
    names = [spec.type, *spec.aliases]
    for old, new in _LEGACY_PREFIXES:
        for name in (spec.type, *spec.aliases):
            if name.startswith(new):
                legacy = old + name[len(new) :]
                if legacy not in names and legacy in registry and registry.resolve(legacy).type == spec.type:
                    names.append(legacy)
    return names


def _struct_name(cls: Any) -> str:
    return str(cls.__name__)


def _def_name(spec: PluginSpec) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", spec.type)


def _common_task_props() -> dict[str, Any]:
    return {
        "id": {"type": "string", "pattern": r"^[a-zA-Z0-9][a-zA-Z0-9_-]*$", "description": "Unique task id"},
        "description": {"type": "string"},
        "disabled": {"type": "boolean"},
        "allowFailure": {"type": "boolean"},
        "allowWarning": {"type": "boolean"},
        "timeout": _DURATION,
        "retry": {"$ref": "#/$defs/Retry"},
        "workerGroup": {
            "type": "object",
            "properties": {"key": {"type": "string"}, "fallback": {"enum": ["FAIL", "WAIT", "CANCEL"]}},
        },
        "logLevel": {"enum": list(LOG_LEVELS)},
        "logToFile": {"type": "boolean"},
        "runIf": {"type": "string"},
        "errors": _BRANCH_LIST,
        "finally": _BRANCH_LIST,
    }


def _task_schema(spec: PluginSpec, registry: Registry, defs: dict[str, Any]) -> dict[str, Any]:
    name = _def_name(spec)
    props: dict[str, Any] = _common_task_props()
    required = ["id", "type"]
    try:
        (_ref,), components = msgspec.json.schema_components(
            [spec.props], ref_template=f"#/$defs/{name}.{{name}}"
        )
        body = components.pop(_struct_name(spec.props), {})
        for comp_name, comp in components.items():
            defs[f"{name}.{comp_name}"] = comp
        for prop, sub in body.get("properties", {}).items():
            props[prop] = {"anyOf": [sub, _EXPRESSION]}
        required += list(body.get("required", []))
    except Exception:  # an exotic props type: don't fail the whole schema
        pass
    enums, counts, must, refused = schema_rules(spec.type)
    for prop, values in enums.items():
        props[prop] = {"anyOf": [{"enum": values}, _EXPRESSION]}
    for prop in counts:
        props[prop] = {"anyOf": [{"type": "integer", "minimum": 0}, _WHOLE_NUMBER, _EXPRESSION]}
    required += [prop for prop in must if prop not in required]
    for prop in (*refused, *spec.extra.get("not_supported", {})):
        props.pop(prop, None)
    for branch in spec.branches:
        if branch == "cases":
            props["cases"] = {"type": "object", "additionalProperties": _TASK_LIST}
        elif branch == "tasks" and spec.type.endswith(".Dag"):
            props["tasks"] = _list_of(
                _object({"task": {"$ref": "#/$defs/Task"}, "dependsOn": _STRINGS}, ["task"])
            )
        else:
            props[branch] = _BRANCH_LIST
    props["type"] = {"enum": _type_names(spec, registry)}
    versions = registry.versions(spec.type)
    if versions:
        props["version"] = {"enum": [*versions, LATEST, OLDEST], "description": "The plugin version to run"}
    schema: dict[str, Any] = {
        "type": "object",
        "title": spec.type.rsplit(".", 1)[-1],
        "properties": props,
        "required": required,
        "additionalProperties": bool(spec.extra.get("allow_unknown_props", False)),
    }
    if spec.description:
        schema["description"] = spec.description
    return schema


def _input_schema() -> dict[str, Any]:
    variants = []
    for t in INPUT_TYPES:
        props: dict[str, Any] = {
            "id": {"type": "string", "pattern": r"^[a-zA-Z0-9][.a-zA-Z0-9_-]*$"},
            "name": {"type": "string", "deprecated": True},
            "type": {"const": t},
            "description": {"type": "string"},
            "displayName": {"type": "string", "maxLength": 64},
            "required": {"type": "boolean", "default": True},
            "defaults": {},
            "dependsOn": {
                "type": "object",
                "properties": {"inputs": _STRINGS, "condition": {"type": "string"}},
            },
        }
        for extra in INPUT_EXTRA.get(t, ()):
            props[extra] = {}
        if "itemType" in props:
            props["itemType"] = {"enum": [x for x in INPUT_TYPES if x != "ARRAY"]}
        if "values" in props:
            props["values"] = _STRINGS
        variants.append(_object(props, ["type"]))
    return {"oneOf": variants}


def flow_json_schema(registry: Registry | None = None) -> dict[str, Any]:
    """The JSON Schema of a flow file, with one task variant per registered plugin."""
    reg = registry if registry is not None else default_registry()
    defs: dict[str, Any] = {}
    variants = []
    for spec in reg.specs():
        name = _def_name(spec)
        defs[name] = _task_schema(spec, reg, defs)
        # discriminated by `type`: a non-matching variant fails on `if` alone (cheap, no deep walk)
        variants.append(
            {
                "if": {"properties": {"type": {"enum": _type_names(spec, reg)}}, "required": ["type"]},
                "then": {"$ref": f"#/$defs/{name}"},
                "else": False,
            }
        )
    defs["Task"] = {"oneOf": variants} if variants else {"type": "object"}
    defs["Retry"] = _model_object(
        Retry,
        enums={
            "type": ["constant", "exponential", "random"],
            "behavior": ["RETRY_FAILED_TASK", "CREATE_NEW_EXECUTION"],
        },
    )
    defs["Input"] = _input_schema()
    plugin_default = _object(
        {"type": {"type": "string"}, "values": {"type": "object"}, "forced": {"type": "boolean"}},
        ["type", "values"],
    )
    labels = {
        "oneOf": [
            {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
            _list_of(
                _object(
                    {"key": {"type": "string"}, "value": {"type": "string"}}, ["key", "value"], closed=False
                )
            ),
        ]
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://engine.local/schemas/flow.json",
        "title": "Kestra flow",
        "type": "object",
        "required": ["id", "namespace", "tasks"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "pattern": r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$", "maxLength": 100},
            "namespace": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9._-]*$", "maxLength": 150},
            "revision": {"type": "integer", "minimum": 1},
            "description": {"type": "string"},
            "labels": labels,
            "inputs": {"type": "array", "items": {"$ref": "#/$defs/Input"}},
            "outputs": _list_of(
                _object(
                    {
                        "id": {"type": "string"},
                        "type": {"enum": list(INPUT_TYPES)},
                        "value": {},
                        "description": {"type": "string"},
                        "displayName": {"type": "string"},
                        "required": {"type": "boolean"},
                    },
                    ["id", "value"],
                )
            ),
            "variables": {"type": "object"},
            "tasks": {**_TASK_LIST, "minItems": 1},
            "errors": _TASK_LIST,
            "finally": _TASK_LIST,
            "afterExecution": _TASK_LIST,
            "triggers": _list_of(
                _object(
                    {"id": {"type": "string"}, "type": {"type": "string"}, "disabled": {"type": "boolean"}},
                    ["id", "type"],
                    closed=False,
                )
            ),
            "pluginDefaults": {"type": "array", "items": plugin_default},
            "taskDefaults": {"type": "array", "items": plugin_default, "deprecated": True},
            "concurrency": _model_object(Concurrency, enums={"behavior": ["QUEUE", "CANCEL", "FAIL"]}),
            "retry": {"$ref": "#/$defs/Retry"},
            "timeout": _DURATION,
            "disabled": {"type": "boolean"},
            "deleted": {"type": "boolean"},
            "tenantId": {"type": "string"},
            "sla": {"type": "array", "items": {"type": "object"}},
            "checks": {"type": "array", "items": {"type": "object"}},
            "listeners": {"type": "array", "deprecated": True, "maxItems": 0},
        },
        "$defs": defs,
    }
