"""engine.loader.schema: the flow JSON Schema for editors."""

from __future__ import annotations

import json
from pathlib import Path

from engine.core.errors import FlowValidationError
from engine.loader.loader import load_flow_file
from engine.loader.schema import flow_json_schema
from engine.yamlpos import load_yaml
from plugins.registry import default_registry

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "kestra" / "flows"  # ../shared


def test_schema_is_json_and_lists_types() -> None:
    schema = flow_json_schema()
    text = json.dumps(schema)
    assert json.loads(text) == schema
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(schema["required"]) == {"id", "namespace", "tasks"}
    defs = schema["$defs"]
    names = {spec.type for spec in default_registry().specs()}
    assert "io.kestra.plugin.core.flow.Sequential" in names
    for name in names:
        assert name in defs
    assert len(defs["Task"]["oneOf"]) == len(names)
    subflow = defs["io.kestra.plugin.core.flow.Subflow"]
    assert "io.kestra.core.tasks.flows.Flow" in subflow["properties"]["type"]["enum"]
    assert "flowId" in subflow["properties"] and "flowId" in subflow["required"]
    seq = defs["io.kestra.plugin.core.flow.Sequential"]
    assert "io.kestra.core.tasks.flows.Sequential" in seq["properties"]["type"]["enum"]
    assert "allowFailure" in seq["properties"] and "tasks" in seq["properties"]
    switch = defs["io.kestra.plugin.core.flow.Switch"]
    assert "cases" in switch["properties"]
    retry = defs["Retry"]["properties"]
    assert {"maxAttempt", "maxInterval", "warningOnRetry", "delayFactor"} <= set(retry)
    assert "concurrency" in schema["properties"] and "pluginDefaults" in schema["properties"]


def test_schema_validates_corpus_flows() -> None:
    import jsonschema  # a dev dependency: the exported schema is checked, never skipped

    assert CORPUS.is_dir(), f"the Kestra conformance corpus is missing: expected {CORPUS}"
    schema = flow_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    checked = 0
    for path in sorted(CORPUS.iterdir()):
        if path.suffix not in (".yml", ".yaml"):
            continue
        try:
            load_flow_file(path)
        except FlowValidationError:
            continue  # e.g. a task type whose plugin isn't written yet
        data, _ = load_yaml(path.read_text())
        errors = [e.message[:200] for e in validator.iter_errors(data)]
        assert not errors, f"{path.name}: {errors[0]}"
        checked += 1
    assert checked > 50
    bad = {"id": "x", "namespace": "n", "tasks": [{"id": "a", "type": "io.kestra.plugin.core.flow.Nope"}]}
    assert list(validator.iter_errors(bad))
