"""The flow loader: Kestra flow YAML -> ``engine.core.model.Flow``, every problem reported at once.

- ``loader``: ``load_flow`` / ``load_flow_file`` / ``load_flows_dir`` / ``load_flow_revision``, the
  flow's top-level properties and the order of the sections;
- ``yamlpos``: YAML with the line and column of every path, refusing alias bombs (``safe_load``
  is the bounded ``yaml.safe_load`` for YAML inputs);
- ``checker``: the issue list and the scalar checks every section shares;
- one validator per section: ``tasks`` (with ``dag``), ``props`` (plugin properties against their
  Structs), ``plugin_defaults``, ``inputs``, ``outputs``, ``triggers``, ``retry``,
  ``concurrency_sla``, ``labels``, ``expressions`` (template syntax, unknown functions, undeclared
  inputs), ``plugin_rules`` (what Kestra's plugins require beyond a value's shape, and what is
  refused as not supported yet);
- ``schema``: the flow JSON Schema for editors.

This file imports nothing: ``engine.inputs`` takes ``yamlpos.safe_load`` while the loader itself
needs ``engine.expressions`` (which needs ``engine.inputs``), so the package must stay empty.
"""
