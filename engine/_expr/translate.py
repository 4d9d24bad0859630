"""Translate Kestra's Pebble template dialect into Jinja2 source.

The translation is done with a small lexer + precedence-climbing parser that mirrors Pebble's own
(``ExpressionParser``: same operators, same precedences, ternary at the lowest level).  Every Pebble
expression is re-emitted as a fully parenthesised Jinja expression, so Jinja's own (different)
precedence rules never matter.  Operators Jinja lacks are emitted as calls to private helpers
(``_pb_*``) that the environment provides; Pebble function calls ``f(...)`` become calls to
``_pbf_f(...)`` so functions live in their own namespace (as in Pebble) and never collide with
variables.
"""

from __future__ import annotations

import re

import msgspec

__all__ = ["FUNCTION_PREFIX", "PebbleSyntaxError", "to_jinja", "translate_expression"]

FUNCTION_PREFIX = "_pbf_"


class PebbleSyntaxError(Exception):
    """A template does not parse; ``pos`` is the offset in the Pebble source."""

    def __init__(self, message: str, pos: int | None = None) -> None:
        super().__init__(message)
        self.pos = pos


# --------------------------------------------------------------------------------------------- lexer

NAME, NUM, STR, OP, PUNC, END = "name", "num", "str", "op", "punc", "end"

_WORD_OPS = frozenset({"and", "or", "not", "is", "contains", "equals"})
# longest first
_SYM_OPS = ("???", "??", "..", "==", "!=", ">=", "<=", ">", "<", "+", "-", "*", "/", "%", "|", "~")
_PUNCT = "()[]{}.,:?="
_PAIRS = {"(": ")", "[": "]", "{": "}"}
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUM_RE = re.compile(r"\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[lLdDfF]?")
_INT_RE = re.compile(r"\d+")
_WS_RE = re.compile(r"\s+")


class Tok(msgspec.Struct):
    kind: str
    value: str
    pos: int
    # for STR: list of str (literal text) or list[Tok] (interpolated expression tokens)
    parts: list[str | list[Tok]] = msgspec.field(default_factory=list)


def _java_unescape(body: str, pos: int) -> str:
    if "\\" not in body:
        return body
    out: list[str] = []
    i = 0
    simple = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "0": "\0"}
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            n = body[i + 1]
            if n in simple:
                out.append(simple[n])
                i += 2
                continue
            if n == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[i + 2 : i + 6] or ""):
                out.append(chr(int(body[i + 2 : i + 6], 16)))
                i += 6
                continue
            out.append(n)
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


class Lexer:
    """Tokenises one expression region of ``src`` starting at ``pos``.

    Stops (without consuming) at the closing delimiter ``close`` when no bracket is open.
    """

    def __init__(self, src: str, pos: int, close: str | None) -> None:
        self.src = src
        self.pos = pos
        self.close = close
        self.stack: list[tuple[str, int]] = []

    def _at_close(self) -> bool:
        if self.close is None or self.stack:
            return False
        s = self.src
        p = self.pos
        if s.startswith(self.close, p):
            return True
        return s.startswith("-" + self.close, p)

    def tokens(self) -> list[Tok]:
        out: list[Tok] = []
        s = self.src
        n = len(s)
        while True:
            m = _WS_RE.match(s, self.pos)
            if m:
                self.pos = m.end()
            if self._at_close():
                out.append(Tok(END, "", self.pos))
                return out
            if self.pos >= n:
                if self.close is None:
                    out.append(Tok(END, "", self.pos))
                    return out
                if self.stack:
                    opener, where = self.stack[-1]
                    raise PebbleSyntaxError(f"'{opener}' is never closed", where)
                raise PebbleSyntaxError(f"missing closing '{self.close}'", self.pos)
            out.append(self._next())

    def _next(self) -> Tok:
        s = self.src
        p = self.pos
        c = s[p]
        if c == '"' or c == "'":
            return self._string(c)
        if c.isascii() and c.isdigit():
            m = _NUM_RE.match(s, p)
            assert m is not None
            text = m.group(0)
            # "1..3" is a range, "x.0.1" is attribute access: a number never swallows a following '..'
            if "." in text and s.startswith("..", p + len(text.split(".")[0])):
                text = text.split(".")[0]
            self.pos = p + len(text)
            return Tok(NUM, text, p)
        if (c.isascii() and c.isalpha()) or c == "_":
            m = _NAME_RE.match(s, p)
            assert m is not None
            word = m.group(0)
            self.pos = m.end()
            if word in _WORD_OPS:
                return Tok(OP, word, p)
            return Tok(NAME, word, p)
        for op in _SYM_OPS:
            if s.startswith(op, p):
                self.pos = p + len(op)
                return Tok(OP, op, p)
        if c in _PUNCT:
            if c in "([{":
                self.stack.append((c, p))
            elif c in ")]}":
                if not self.stack:
                    raise PebbleSyntaxError(f"unbalanced '{c}'", p)
                opener, where = self.stack.pop()
                if _PAIRS[opener] != c:
                    raise PebbleSyntaxError(f"'{opener}' is never closed", where)
            self.pos = p + 1
            return Tok(PUNC, c, p)
        raise PebbleSyntaxError(f"unexpected character {c!r}", p)

    def _string(self, quote: str) -> Tok:
        s = self.src
        start = self.pos
        i = start + 1
        parts: list[str | list[Tok]] = []
        buf: list[str] = []
        while True:
            if i >= len(s):
                raise PebbleSyntaxError("unterminated string literal", start)
            c = s[i]
            if c == "\\" and i + 1 < len(s):
                buf.append(s[i : i + 2])
                i += 2
                continue
            if c == quote:
                i += 1
                break
            if quote == '"' and c == "#" and s.startswith("#{", i):
                parts.append(_java_unescape("".join(buf), start))
                buf = []
                sub = Lexer(s, i + 2, "}")
                toks = sub.tokens()
                parts.append(toks)
                i = sub.pos + 1
                continue
            buf.append(c)
            i += 1
        parts.append(_java_unescape("".join(buf), start))
        self.pos = i
        parts = [p for p in parts if p != ""] or [""]
        return Tok(STR, "", start, parts)


# -------------------------------------------------------------------------------------------- parser

_BINARY: dict[str, int] = {
    "or": 10,
    "and": 15,
    "is": 20,
    "contains": 20,
    "==": 30,
    "equals": 30,
    "!=": 30,
    ">": 30,
    "<": 30,
    ">=": 30,
    "<=": 30,
    "+": 40,
    "-": 40,
    "*": 60,
    "/": 60,
    "%": 60,
    "|": 100,
    "~": 110,
    "..": 120,
    "??": 120,
    "???": 120,
}
_UNARY_PREC = 500
_CONSTS = {
    "true": "true",
    "TRUE": "true",
    "false": "false",
    "FALSE": "false",
    "null": "none",
    "NULL": "none",
    "none": "none",
    "NONE": "none",
}
# Pebble's loop variables are zero-based where Jinja's are one-based
_LOOP_ATTRS = {"index": "index0", "revindex": "revindex0"}


def jinja_string(value: str) -> str:
    """A Jinja string literal whose value is ``value``."""
    body = value.encode("unicode_escape").decode("ascii").replace('"', '\\"')
    return '"' + body + '"'


class Parser:
    def __init__(self, toks: list[Tok], macros: frozenset[str] = frozenset()) -> None:
        self.toks = toks
        self.i = 0
        self.macros = macros

    # helpers
    @property
    def cur(self) -> Tok:
        return self.toks[self.i]

    def peek(self, k: int = 1) -> Tok:
        j = min(self.i + k, len(self.toks) - 1)
        return self.toks[j]

    def advance(self) -> Tok:
        t = self.toks[self.i]
        if t.kind != END:
            self.i += 1
        return t

    def is_(self, kind: str, value: str | None = None) -> bool:
        t = self.cur
        return t.kind == kind and (value is None or t.value == value)

    def expect(self, kind: str, value: str | None = None) -> Tok:
        if not self.is_(kind, value):
            want = repr(value) if value is not None else kind
            raise PebbleSyntaxError(f"expected {want} but found {self._describe(self.cur)}", self.cur.pos)
        return self.advance()

    @staticmethod
    def _describe(t: Tok) -> str:
        if t.kind == END:
            return "end of expression"
        if t.kind == STR:
            return "a string"
        return repr(t.value)

    def done(self) -> None:
        if not self.is_(END):
            raise PebbleSyntaxError(f"unexpected {self._describe(self.cur)}", self.cur.pos)

    # grammar
    def expression(self, min_prec: int = 0) -> str:
        t = self.cur
        if t.kind == OP and t.value in ("not", "-", "+"):
            self.advance()
            operand = self.expression(_UNARY_PREC)
            expr = f"(not {operand})" if t.value == "not" else f"({t.value}{operand})"
        else:
            expr = self.primary()
        while True:
            t = self.cur
            if t.kind != OP or t.value not in _BINARY:
                break
            prec = _BINARY[t.value]
            if prec < min_prec:
                break
            self.advance()
            op = t.value
            if op == "|":
                expr = self.filter_call(expr)
                continue
            if op == "is":
                negate = False
                if self.is_(OP, "not"):
                    self.advance()
                    negate = True
                name_tok = self.cur
                if name_tok.kind not in (NAME, OP) or not _NAME_RE.fullmatch(name_tok.value):
                    raise PebbleSyntaxError(
                        f"expected a test name after 'is' but found {self._describe(name_tok)}", name_tok.pos
                    )
                self.advance()
                args = self.arguments() if self.is_(PUNC, "(") else ""
                expr = f"({expr} is {'not ' if negate else ''}{name_tok.value}{args})"
                continue
            right = self.expression(prec + 1)
            expr = self._binary(op, expr, right)
        if min_prec == 0 and self.is_(PUNC, "?"):
            self.advance()
            yes = self.expression()
            self.expect(PUNC, ":")
            no = self.expression()
            expr = f"({yes} if {expr} else {no})"
        return expr

    @staticmethod
    def _binary(op: str, left: str, right: str) -> str:
        if op in ("and", "or"):
            return f"_pb_bool({left} {op} {right})"
        if op == "equals":
            op = "=="
        if op in ("==", "!=", ">", "<", ">=", "<=", "+", "-", "*", "/", "%"):
            return f"({left} {op} {right})"
        if op == "contains":
            return f"_pb_contains({left}, {right})"
        if op == "~":
            return f"_pb_cat({left}, {right})"
        if op == "..":
            return f"_pb_range({left}, {right})"
        if op == "??":
            return f"_pb_nc({left}, {right})"
        if op == "???":
            return f"_pb_uc({left}, {right})"
        raise PebbleSyntaxError(f"unsupported operator {op!r}")  # pragma: no cover

    def filter_call(self, expr: str) -> str:
        name_tok = self.cur
        if name_tok.kind != NAME:
            raise PebbleSyntaxError(
                f"expected a filter name after '|' but found {self._describe(name_tok)}", name_tok.pos
            )
        self.advance()
        args = self.arguments() if self.is_(PUNC, "(") else ""
        return f"({expr}|{name_tok.value}{args})"

    def arguments(self) -> str:
        self.expect(PUNC, "(")
        args: list[str] = []
        while not self.is_(PUNC, ")"):
            if self.is_(NAME) and self.peek().kind == PUNC and self.peek().value == "=":
                key = self.advance().value
                self.advance()
                args.append(f"{key}={self.expression()}")
            else:
                args.append(self.expression())
            if not self.is_(PUNC, ")"):
                self.expect(PUNC, ",")
        self.advance()
        return "(" + ", ".join(args) + ")"

    def primary(self) -> str:
        t = self.cur
        if t.kind == PUNC and t.value == "(":
            self.advance()
            inner = self.expression()
            self.expect(PUNC, ")")
            return self.postfix(f"({inner})")
        if t.kind == PUNC and t.value == "[":
            self.advance()
            items: list[str] = []
            while not self.is_(PUNC, "]"):
                items.append(self.expression())
                if not self.is_(PUNC, "]"):
                    self.expect(PUNC, ",")
            self.advance()
            return self.postfix("[" + ", ".join(items) + "]")
        if t.kind == PUNC and t.value == "{":
            self.advance()
            pairs: list[str] = []
            while not self.is_(PUNC, "}"):
                key = self.expression()
                self.expect(PUNC, ":")
                value = self.expression()
                pairs.append(f"{key}: {value}")
                if not self.is_(PUNC, "}"):
                    self.expect(PUNC, ",")
            self.advance()
            return self.postfix("{ " + ", ".join(pairs) + " }")
        if t.kind == NUM:
            self.advance()
            text = t.value.rstrip("lLdDfF") if not t.value.isdigit() else t.value
            if t.value[-1] in "dDfF" and "." not in text and "e" not in text.lower():
                text += ".0"
            return self.postfix(text)
        if t.kind == STR:
            self.advance()
            return self.postfix(self.string(t))
        if t.kind == NAME:
            self.advance()
            if t.value in _CONSTS:
                return self.postfix(_CONSTS[t.value])
            if self.is_(PUNC, "("):
                name = t.value if t.value in self.macros else FUNCTION_PREFIX + t.value
                return self.postfix(name + self.arguments())
            if t.value == "loop" and self.is_(PUNC, ".") and self.peek().value in _LOOP_ATTRS:
                self.advance()
                attr = self.advance().value
                return self.postfix(f"loop.{_LOOP_ATTRS[attr]}")
            return self.postfix(t.value)
        raise PebbleSyntaxError(f"unexpected {self._describe(t)}", t.pos)

    def string(self, t: Tok) -> str:
        pieces: list[str] = []
        for part in t.parts:
            if isinstance(part, str):
                pieces.append(jinja_string(part))
            else:
                sub = Parser(part, self.macros)
                pieces.append(sub.expression())
                sub.done()
        if len(pieces) == 1 and isinstance(t.parts[0], str):
            return pieces[0]
        return "_pb_cat(" + ", ".join(pieces) + ")"

    def postfix(self, expr: str) -> str:
        while True:
            if self.is_(PUNC, "."):
                self.advance()
                t = self.cur
                if t.kind == NUM:
                    if not _INT_RE.fullmatch(t.value):
                        raise PebbleSyntaxError(f"invalid attribute {t.value!r}", t.pos)
                    self.advance()
                    expr = f'{expr}["{t.value}"]'
                elif t.kind == NAME or (t.kind == OP and t.value in _WORD_OPS):
                    self.advance()
                    if self.is_(PUNC, "("):
                        expr = f"{expr}.{t.value}{self.arguments()}"
                    elif t.kind == OP or t.value in _CONSTS or t.value in _JINJA_KEYWORDS:
                        expr = f"{expr}[{jinja_string(t.value)}]"
                    else:
                        expr = f"{expr}.{t.value}"
                else:
                    raise PebbleSyntaxError(
                        f"expected an attribute name after '.' but found {self._describe(t)}", t.pos
                    )
            elif self.is_(PUNC, "["):
                self.advance()
                key = self.expression()
                self.expect(PUNC, "]")
                expr = f"{expr}[{key}]"
            else:
                return expr


_JINJA_KEYWORDS = frozenset(
    {"in", "if", "else", "for", "recursive", "with", "without", "context", "ignore", "missing", "import"}
)


def translate_expression(src: str, macros: frozenset[str] = frozenset()) -> str:
    """Translate one bare Pebble expression (no braces) into a Jinja expression."""
    toks = Lexer(src, 0, None).tokens()
    p = Parser(toks, macros)
    if p.is_(END):
        raise PebbleSyntaxError("empty expression", 0)
    out = p.expression()
    p.done()
    return out


# ----------------------------------------------------------------------------------------- templates

_RAW_END = {
    "raw": re.compile(r"\{%-?\s*endraw\s*-?%\}"),
    "verbatim": re.compile(r"\{%-?\s*endverbatim\s*-?%\}"),
}
_MACRO_RE = re.compile(r"\{%-?\s*macro\s+([A-Za-z_][A-Za-z0-9_]*)")
_PASS_TAGS = frozenset(
    {"else", "endif", "endfor", "endmacro", "endfilter", "endautoescape", "endset", "endwith"}
)
_UNSUPPORTED_TAGS = frozenset(
    {
        "block",
        "endblock",
        "extends",
        "include",
        "import",
        "from",
        "embed",
        "endembed",
        "parallel",
        "endparallel",
        "cache",
        "endcache",
        "flush",
    }
)


def to_jinja(src: str) -> str:
    """Translate a whole Pebble template into Jinja source."""
    macros = frozenset(_MACRO_RE.findall(src)) if "macro" in src else frozenset()
    out: list[str] = []
    i = 0
    n = len(src)
    while i < n:
        j = src.find("{", i)
        if j < 0 or j + 1 >= n:
            out.append(src[i:])
            break
        nxt = src[j + 1]
        if nxt not in "{%#":
            out.append(src[i : j + 1])
            i = j + 1
            continue
        out.append(src[i:j])
        if nxt == "#":
            k = src.find("#}", j + 2)
            if k < 0:
                raise PebbleSyntaxError("unclosed comment '{#'", j)
            out.append(src[j : k + 2])
            i = k + 2
            continue
        p = j + 2
        strip_l = "-" if src.startswith("-", p) else ""
        p += len(strip_l)
        if nxt == "{":
            lx = Lexer(src, p, "}}")
            toks = lx.tokens()
            e = lx.pos
            strip_r = "-" if src.startswith("-", e) else ""
            parser = Parser(toks, macros)
            if parser.is_(END):
                raise PebbleSyntaxError("empty expression '{{ }}'", j)
            expr = parser.expression()
            parser.done()
            nls = "\n" * src.count("\n", j, e)  # keep line numbers aligned with the source
            out.append("{{" + strip_l + " " + expr + " " + nls + strip_r + "}}")
            i = e + len(strip_r) + 2
            continue
        # tag
        lx = Lexer(src, p, "%}")
        toks = lx.tokens()
        e = lx.pos
        strip_r = "-" if src.startswith("-", e) else ""
        close = e + len(strip_r) + 2
        if not toks or toks[0].kind not in (NAME, OP):
            raise PebbleSyntaxError("expected a tag name after '{%'", p)
        tag = toks[0].value
        if tag in _RAW_END:
            m = _RAW_END[tag].search(src, close)
            if m is None:
                raise PebbleSyntaxError(f"unclosed '{{% {tag} %}}'", j)
            body = src[close : m.start()]
            end_l = "-" if m.group(0).startswith("{%-") else ""
            end_r = "-" if m.group(0).endswith("-%}") else ""
            out.append(
                "{%" + strip_l + " raw " + strip_r + "%}" + body + "{%" + end_l + " endraw " + end_r + "%}"
            )
            i = m.end()
            continue
        body = _translate_tag(tag, toks, macros, j)
        nls = "\n" * src.count("\n", j, e)
        out.append("{%" + strip_l + " " + body + " " + nls + strip_r + "%}")
        i = close
    return "".join(out)


def _translate_tag(tag: str, toks: list[Tok], macros: frozenset[str], where: int) -> str:
    p = Parser(toks, macros)
    p.advance()
    if tag in ("if", "elseif", "elif"):
        cond = p.expression()
        p.done()
        return f"{'if' if tag == 'if' else 'elif'} {cond}"
    if tag in _PASS_TAGS:
        p.done()
        return tag
    if tag == "for":
        names = [p.expect(NAME).value]
        while p.is_(PUNC, ","):
            p.advance()
            names.append(p.expect(NAME).value)
        in_tok = p.expect(NAME, "in") if p.is_(NAME, "in") else None
        if in_tok is None:
            raise PebbleSyntaxError("expected 'in' in for tag", p.cur.pos)
        seq = p.expression()
        p.done()
        if len(names) == 1:
            return f"for {names[0]} in _pb_iter({seq})"
        return f"for {', '.join(names)} in _pb_items({seq})"
    if tag == "set":
        name = p.expect(NAME).value
        p.expect(PUNC, "=")
        value = p.expression()
        p.done()
        return f"set {name} = {value}"
    if tag == "filter":
        chain: list[str] = []
        while True:
            name = p.expect(NAME).value
            args = p.arguments() if p.is_(PUNC, "(") else ""
            chain.append(name + args)
            if p.is_(OP, "|"):
                p.advance()
                continue
            break
        p.done()
        return "filter " + "|".join(chain)
    if tag == "macro":
        name = p.expect(NAME).value
        p.expect(PUNC, "(")
        params: list[str] = []
        while not p.is_(PUNC, ")"):
            pname = p.expect(NAME).value
            if p.is_(PUNC, "="):
                p.advance()
                params.append(f"{pname}={p.expression()}")
            else:
                params.append(pname)
            if not p.is_(PUNC, ")"):
                p.expect(PUNC, ",")
        p.advance()
        p.done()
        return f"macro {name}({', '.join(params)})"
    if tag == "autoescape":
        return "autoescape false"
    if tag in _UNSUPPORTED_TAGS:
        raise PebbleSyntaxError(f"the '{tag}' tag is not supported", where)
    raise PebbleSyntaxError(f"unknown tag '{tag}'", where)
