"""YAML loading that remembers where every key, value and list item was written.

``load_yaml(text)`` returns the plain Python data (dicts, lists, scalars) and a ``Positions``
object mapping field paths such as ``tasks[1].retry.maxAttempt`` to 1-based (line, column).

The loader is PyYAML's SafeLoader with two changes that match how Kestra (Jackson) reads flows:
timestamps stay strings (``after: 2023-01-01`` is the text ``"2023-01-01"``), and only
``true``/``false`` (any case) are booleans, not YAML 1.1's ``yes``/``no``/``on``/``off``.
Duplicate keys in a mapping are recorded in ``Positions.duplicates`` (the last one wins,
like PyYAML) so the flow loader can report them.

Flows and YAML inputs come from untrusted users, and an alias reads its whole anchored subtree again:
ten nested levels of nine aliases ("billion laughs") expand to 10^9 nodes from a few hundred bytes.
``load_yaml`` and ``safe_load`` (``yaml.safe_load`` with the same guards, which ``engine.inputs``
parses YAML inputs with) raise a FlowValidationError for a document whose aliases reach more than
``MAX_ALIAS_NODES`` nodes a second time (counted on the node graph, before anything is built), and
for one nested deeper than PyYAML's recursion can read.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import msgspec
import yaml

from engine.core.errors import FlowValidationError, Issue

__all__ = [
    "MAX_ALIAS_NODES",
    "Duplicate",
    "Positions",
    "child_path",
    "index_path",
    "load_yaml",
    "safe_load",
]

_SIMPLE_KEY = re.compile(r"^[A-Za-z0-9_:@$/+-]+$")
# nodes reached again through aliases: far above any hand-written reuse of anchors, far below what
# takes a noticeable time to build (the count stops at the first node over it)
MAX_ALIAS_NODES = 100_000


def child_path(parent: str, key: object) -> str:
    """The path of ``key`` inside the mapping at ``parent`` (``a.b``, or ``a["odd key"]``)."""
    text = str(key)
    if _SIMPLE_KEY.match(text):
        return f"{parent}.{text}" if parent else text
    quoted = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'{parent}["{quoted}"]'


def index_path(parent: str, index: int) -> str:
    """The path of item ``index`` of the list at ``parent``."""
    return f"{parent}[{index}]"


class Duplicate(msgspec.Struct, frozen=True):
    path: str
    line: int
    column: int
    first_line: int


class Positions(msgspec.Struct):
    """Where each path was written: ``keys`` for mapping keys, ``values`` for values and list items."""

    keys: dict[str, tuple[int, int]] = msgspec.field(default_factory=dict)
    values: dict[str, tuple[int, int]] = msgspec.field(default_factory=dict)
    duplicates: list[Duplicate] = msgspec.field(default_factory=list)

    def key(self, path: str) -> tuple[int, int] | None:
        return self.keys.get(path)

    def value(self, path: str) -> tuple[int, int] | None:
        return self.values.get(path)

    def at(self, path: str) -> tuple[int, int] | None:
        """Best position for ``path``: its value, else its key, else the nearest written ancestor."""
        current = path
        while True:
            pos = self.values.get(current) or self.keys.get(current)
            if pos is not None:
                return pos
            parent = _parent(current)
            if parent is None:
                return None
            current = parent

    def key_or_at(self, path: str) -> tuple[int, int] | None:
        """Position of the key if written, else ``at(path)`` (for "unknown property" issues)."""
        return self.keys.get(path) or self.at(path)


def _parent(path: str) -> str | None:
    if not path:
        return None
    if path.endswith("]"):
        # either [n] or ["key"]
        depth = 0
        in_quote = False
        for i in range(len(path) - 1, -1, -1):
            ch = path[i]
            if ch == '"' and (i == 0 or path[i - 1] != "\\"):
                in_quote = not in_quote
            elif not in_quote and ch == "]":
                depth += 1
            elif not in_quote and ch == "[":
                depth -= 1
                if depth == 0:
                    return path[:i]
        return ""
    dot = path.rfind(".")
    bracket = path.rfind("]")
    if dot > bracket:
        return path[:dot]
    if bracket >= 0:
        return path[: bracket + 1]
    return ""


class _SafeLoader(yaml.SafeLoader):
    """SafeLoader that remembers where each alias was written (the node it returns is the anchor's)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.alias_sites: dict[tuple[int, object], yaml.Mark] = {}

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
            if isinstance(event.start_mark, yaml.Mark):
                self.alias_sites[_site(parent, index)] = event.start_mark
        return super().compose_node(parent, index)


def _site(parent: yaml.Node | None, index: Any) -> tuple[int, object]:
    """Key of a child slot: its parent and its list index, or the key node of its mapping entry."""
    return id(parent), index if index is None or isinstance(index, int) else id(index)


class _Loader(_SafeLoader):
    """SafeLoader without timestamps and with YAML 1.2 booleans."""


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, rx)
        for tag, rx in resolvers
        if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:bool")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", _BOOL, list("tTfF"))


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Builder:
    def __init__(self, loader: _Loader) -> None:
        self.loader = loader
        self.positions = Positions()
        self._stack: set[int] = set()

    def build(self, node: yaml.Node, path: str) -> Any:
        self.positions.values.setdefault(path, _mark(node))
        if isinstance(node, yaml.MappingNode):
            if id(node) in self._stack:
                return {}
            self._stack.add(id(node))
            try:
                self.loader.flatten_mapping(node)
                result: dict[Any, Any] = {}
                seen: dict[Any, int] = {}
                for key_node, value_node in node.value:
                    key = self.loader.construct_object(key_node, deep=True)
                    if isinstance(key, list | dict):
                        key = str(key)
                    sub = child_path(path, key)
                    line, col = _mark(key_node)
                    if key in seen:
                        self.positions.duplicates.append(Duplicate(sub, line, col, seen[key]))
                        self.positions.values.pop(sub, None)
                        self.positions.keys[sub] = (line, col)
                    else:
                        seen[key] = line
                        self.positions.keys.setdefault(sub, (line, col))
                    result[key] = self.build(value_node, sub)
                return result
            finally:
                self._stack.discard(id(node))
        if isinstance(node, yaml.SequenceNode):
            if id(node) in self._stack:
                return []
            self._stack.add(id(node))
            try:
                return [self.build(item, index_path(path, i)) for i, item in enumerate(node.value)]
            finally:
                self._stack.discard(id(node))
        return self.loader.construct_object(node, deep=True)


class _TooManyAliases(Exception):
    def __init__(self, path: str, mark: yaml.Mark) -> None:
        self.path = path
        self.mark = mark


class _AliasBudget:
    """Walks the node graph as it will be built, counting the nodes reached again through aliases.

    An overrun names the outermost alias of the path being expanded: that is a line the author wrote
    (the nodes themselves are positioned at their anchors). Paths are spelt out only at alias sites.
    """

    def __init__(self, sites: dict[tuple[int, object], yaml.Mark], limit: int = MAX_ALIAS_NODES) -> None:
        self.sites = sites
        self.limit = limit
        self.seen: set[int] = set()
        self.again = 0
        self._stack: set[int] = set()
        self._steps: list[object] = []  # keys and indexes from the root to the node being walked

    def walk(self, node: yaml.Node, alias: tuple[str, yaml.Mark] | None) -> None:
        if id(node) in self.seen:
            self.again += 1
            if self.again > self.limit:
                where, mark = alias if alias is not None else (self._path(), node.start_mark)
                raise _TooManyAliases(where, mark)
        else:
            self.seen.add(id(node))
        if id(node) in self._stack:  # a recursive alias: built as an empty collection
            return
        self._stack.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                self._steps.append(key_node.value if isinstance(key_node, yaml.ScalarNode) else "?")
                self.walk(key_node, alias or self._alias(node, None))
                self.walk(value_node, alias or self._alias(node, key_node))
                self._steps.pop()
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._steps.append(i)
                self.walk(item, alias or self._alias(node, i))
                self._steps.pop()
        self._stack.discard(id(node))

    def _alias(self, parent: yaml.Node, index: Any) -> tuple[str, yaml.Mark] | None:
        mark = self.sites.get(_site(parent, index))
        return None if mark is None else (self._path(), mark)

    def _path(self) -> str:
        path = ""
        for step in self._steps:
            path = index_path(path, step) if isinstance(step, int) else child_path(path, step)
        return path


def _compose(loader: _SafeLoader, file: str | None) -> yaml.Node | None:
    """The document's node graph, refused when its aliases expand too far."""
    node = loader.get_single_node()
    if node is not None and loader.alias_sites:  # without aliases no node is reached twice
        try:
            _AliasBudget(loader.alias_sites).walk(node, None)
        except _TooManyAliases as exc:
            message = (
                f"YAML aliases expand to more than {MAX_ALIAS_NODES} nodes (an alias bomb?) — write the "
                "repeated part out, or use fewer aliases of aliases"
            )
            issue = Issue(exc.path or "(document)", message, exc.mark.line + 1, exc.mark.column + 1, file)
            raise FlowValidationError([issue]) from None
    return node


@contextlib.contextmanager
def _refusing_deep_nesting(loader: _SafeLoader, file: str | None) -> Iterator[None]:
    """PyYAML recurses once per level: hundreds of nested brackets would escape as a RecursionError."""
    try:
        yield
    except RecursionError:
        mark = loader.get_mark()
        message = "YAML nested too deep to read — flatten the structure (a flow needs a few dozen levels)"
        raise FlowValidationError([Issue("", message, mark.line + 1, mark.column + 1, file)]) from None


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` refusing alias bombs and deep nesting (FlowValidationError); syntax errors
    stay YAMLError."""
    loader = _SafeLoader(text)
    try:
        with _refusing_deep_nesting(loader, None):
            node = _compose(loader, None)
            return None if node is None else loader.construct_document(node)
    finally:
        loader.dispose()


def load_yaml(text: str, *, file: str | None = None) -> tuple[Any, Positions]:
    """Parse ``text``; returns ``(data, positions)``. Syntax errors raise FlowValidationError."""
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:  # a character YAML refuses, found before parsing starts
        before = text[: exc.position]
        at_line, at_column = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        shown = chr(exc.character) if isinstance(exc.character, int) else exc.character
        message = f"YAML error: character {shown!r} is not allowed ({exc.reason}) — remove it"
        raise FlowValidationError([Issue("", message, at_line, at_column, file)]) from None
    try:
        with _refusing_deep_nesting(loader, file):
            node = _compose(loader, file)
            if node is None:
                return None, Positions()
            builder = _Builder(loader)
            data = builder.build(node, "")
            return data, builder.positions
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or "invalid YAML"
        if exc.context:
            problem = f"{problem} ({exc.context}"
            if exc.context_mark is not None and exc.context_mark is not mark:
                problem += f" at line {exc.context_mark.line + 1}"
            problem += ")"
        line = mark.line + 1 if mark is not None else None
        column = mark.column + 1 if mark is not None else None
        message = f"YAML syntax error: {problem} — check the indentation and quoting around this spot"
        raise FlowValidationError([Issue("", message, line, column, file)]) from None
    except yaml.YAMLError as exc:
        raise FlowValidationError([Issue("", f"YAML error: {exc}", None, None, file)]) from None
    finally:
        loader.dispose()
