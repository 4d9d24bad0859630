"""What a parsed template names: the functions it calls and the inputs it certainly reads.

The loader refuses what it can know before a run: a call to a function nobody provides, and
``inputs.<name>`` when the flow declares no input of that id. Both only where it is certain, so a
flow Kestra runs is never refused: a template that guards a value (``??``, ``???``, a test such as
``is defined``, the ``default`` filter) or rebinds ``inputs`` is not judged on its inputs at all.
"""

from __future__ import annotations

from jinja2 import nodes

from .translate import FUNCTION_PREFIX

__all__ = ["called_functions", "certain_inputs"]

# The helpers ``??`` and ``???`` become: their left side may be undefined on purpose.
_GUARD_CALLS = ("_pb_nc", "_pb_uc")


def called_functions(tree: nodes.Template) -> list[str]:
    """The Pebble function names the template calls, in order of appearance, without repeats."""
    seen: dict[str, None] = {}
    for name in tree.find_all(nodes.Name):
        if name.name.startswith(FUNCTION_PREFIX):
            seen.setdefault(name.name.removeprefix(FUNCTION_PREFIX))
    return list(seen)


def _guarded(tree: nodes.Template) -> bool:
    if any(True for _ in tree.find_all(nodes.Test)):
        return True
    if any(f.name == "default" for f in tree.find_all(nodes.Filter)):
        return True
    if any(n.name == "inputs" and n.ctx != "load" for n in tree.find_all(nodes.Name)):
        return True
    return any(n.name in _GUARD_CALLS for n in tree.find_all(nodes.Name))


def certain_inputs(tree: nodes.Template) -> list[str]:
    """The input ids read as ``inputs.<id>`` or ``inputs['<id>']`` by a template that reads them
    unguarded (else nothing: an undeclared input may be read on purpose, to fall back)."""
    if _guarded(tree):
        return []
    seen: dict[str, None] = {}
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getattr) and _is_inputs(node.node):
            seen.setdefault(node.attr)
        elif (
            isinstance(node, nodes.Getitem)
            and _is_inputs(node.node)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
        ):
            seen.setdefault(node.arg.value)
    return list(seen)


def _is_inputs(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Name) and node.name == "inputs"
