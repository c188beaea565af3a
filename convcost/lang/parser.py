"""Spec files and chains: lines grouped into statements by the continuation rules, ``let``
fragments defined in order, and every statement parsed by :class:`~convcost.lang.grammar.Parser`
(one bad statement never hides the others).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from convcost.errors import Source, Span, SpecError, SpecWarning
from convcost.lang.ast import InputSpec, ModelSpec
from convcost.lang.grammar import Fragment, Parser
from convcost.lang.tokenizer import Token, strip_comment, tokenize_line
from convcost.lang.vocab import MAX_LAYERS

#: Errors reported per source; a file full of errors ends with a note instead of megabytes.
MAX_ERRORS = 100
_MODEL_HEADER = re.compile(r"\s*([A-Za-z0-9_.\-]+)\s*:")
_LET_HEADER = re.compile(r"\s*let(?=\s|$)", re.IGNORECASE)
_FRAGMENT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class _Statement:
    """Physical lines grouped into one statement, with their tokens."""

    __slots__ = ("kind", "line", "name", "name_span", "tokens", "error", "depth", "ends_open",
                 "arrows")

    def __init__(self, kind: str, line: int, name: str = "",
                 name_span: Span = Span(1, 1)) -> None:
        self.kind = kind  # 'model', 'let' or 'bare'
        self.line = line
        self.name = name
        self.name_span = name_span
        self.tokens: list[Token] = []
        self.error: SpecError | None = None
        self.depth = 0
        self.ends_open = False  # the line ended in ':' with nothing after it yet
        self.arrows = 0  # '->' written so far: each joins at least one more layer


class ParsedSource:
    """The models of one source that parsed, and the errors of those that did not."""

    def __init__(self) -> None:
        self.models: list[ModelSpec] = []
        self.errors: list[SpecError] = []
        #: Inputs that parse but look misread (see :func:`channels_first_warning`).
        self.warnings: list[SpecWarning] = []


def parse_source(source: Source, *, bare_names: str = "line") -> ParsedSource:
    """Parse all statements of ``source`` (a file, standard input or a command-line argument).

    Bare chains are named ``FILE:LINE`` (``bare_names="line"``) or by their own text
    (``bare_names="text"``, for chains given on the command line). One bad statement never
    hides the others: its error is collected and parsing goes on.
    """
    result = ParsedSource()
    fragments: dict[str, Fragment] = {}
    seen_models: dict[str, int] = {}
    errors = result.errors
    for statement in _statements(source):
        if len(errors) >= MAX_ERRORS:
            errors.append(SpecError.at(source, Span(statement.line, 1),
                                       f"too many errors: stopped after {MAX_ERRORS}; the rest "
                                       f"of {source.name} is not checked"))
            break
        if statement.error is not None:
            result.errors.append(statement.error)
            if statement.kind == "let" and statement.name:
                fragments.setdefault(statement.name, Fragment(None, statement.line))
            continue
        try:
            if statement.kind == "let":
                _define(source, statement, fragments)
                continue
            chain = Parser(source, statement.tokens, fragments).parse_chain()
            warning = channels_first_warning(source, chain.input)
            if warning is not None:
                result.warnings.append(warning)
            if statement.kind == "model":
                name = statement.name
                if name in seen_models:
                    raise SpecError.at(source, statement.name_span,
                                       f"duplicate model name '{name}' (first defined at line "
                                       f"{seen_models[name]}); model names must be unique in "
                                       f"a file")
                seen_models[name] = statement.line
            elif bare_names == "text":
                name = _statement_text(source, statement)
            else:
                name = f"{source.name}:{statement.line}"
            result.models.append(ModelSpec(name, chain, source, _statement_text(source, statement),
                                           Span(statement.line, 1)))
        except SpecError as error:
            result.errors.append(error.detached())  # keep no frames alive
    return result


#: An input HxWxC with H at most this and W and C at least CHANNELS_FIRST_WIDE looks like
#: PyTorch's CxHxW written in convcost's channels-last order (3x224x224).
CHANNELS_FIRST_H = 4
CHANNELS_FIRST_WIDE = 16


def channels_first_warning(source: Source, given: InputSpec) -> SpecWarning | None:
    """A warning when the input looks written channels first, like PyTorch's 3x224x224."""
    h, w, c = given.h, given.w, given.c
    if h is None or w is None or not (h <= CHANNELS_FIRST_H and min(w, c) >= CHANNELS_FIRST_WIDE):
        return None
    return SpecWarning.at(source, given.span,
                          f"input {h}x{w}x{c} reads as H={h}, W={w}, C={c}: convcost writes "
                          f"inputs HxWxC (channels last); if {h} is the channel count, write "
                          f"{w}x{c}x{h}")


def parse_chain(text: str, source_name: str = "<arg>") -> ModelSpec:
    """Parse one chain (no ``let`` or model names); raises the first :class:`SpecError`."""
    parsed = parse_source(Source(source_name, text), bare_names="text")
    if parsed.errors:
        raise parsed.errors[0]
    if len(parsed.models) != 1:
        raise SpecError(f"expected exactly one chain, found {len(parsed.models)}", source_name)
    return parsed.models[0]


def _define(source: Source, statement: _Statement, fragments: dict[str, Fragment]) -> None:
    """let := 'let' NAME '=' sequence"""
    tokens = statement.tokens
    if len(tokens) < 2 or tokens[1].kind != "WORD" or not _FRAGMENT_NAME.match(tokens[1].text):
        where = tokens[1] if len(tokens) > 1 else tokens[0]
        raise SpecError.at(source, where.span,
                           "expected a fragment name after 'let' ([A-Za-z_][A-Za-z0-9_]*), "
                           "e.g. let block = 3x3(64) -> relu")
    name = tokens[1].text
    if name in fragments:
        fragments_line = fragments[name].line
        raise SpecError.at(source, tokens[1].span,
                           f"fragment '{name}' is already defined at line {fragments_line}")
    parser = Parser(source, tokens[2:], fragments, defining=name)
    parser.expect("EQUALS", f"'=' after 'let {name}'")
    try:
        body = parser.parse_fragment()
    except SpecError:
        fragments[name] = Fragment(None, statement.line)
        raise
    fragments[name] = Fragment(body, statement.line)


def _statement_text(source: Source, statement: _Statement) -> str:
    """The chain as written, on one line (for names and the JSON ``spec`` field)."""
    tokens = statement.tokens
    if statement.kind == "let" or not tokens:
        return ""
    first, last = tokens[0], tokens[-1]
    if first.line == last.line:
        return source.line_text(first.line)[first.column - 1: last.column - 1 + len(last.text)]
    pieces: list[str] = []
    for line in range(first.line, last.line + 1):
        text = strip_comment(source.line_text(line))
        if line == first.line:
            text = text[first.column - 1:]
        pieces.append(text.strip())
    return " ".join(piece for piece in pieces if piece)


def _statements(source: Source) -> Iterator[_Statement]:
    """Group the lines of ``source`` into statements by the contract's continuation rules,
    yielding each once complete (a caller that stops early leaves the rest untokenized)."""
    current: _Statement | None = None
    for number, raw in enumerate(source.lines(), start=1):
        code = strip_comment(raw).rstrip()
        if not code.strip():
            continue
        header = _MODEL_HEADER.match(code)
        let = None if header else _LET_HEADER.match(code)
        starts_new = header is not None or let is not None or current is None
        offset = header.end() if header else 0
        arrows = code.count("->") + code.count("→")
        before = 0 if starts_new or current is None else current.arrows
        if before > MAX_LAYERS:  # the rest of a statement already refused: skip, unread
            continue
        if before + arrows > MAX_LAYERS:
            # More arrows than the layer limit: refused before tokenizing megabytes of it.
            tokens, problem = [], SpecError.at(
                source, Span(number, offset + 1),
                f"more than {MAX_LAYERS:,} layers in one statement, the limit per model")
        else:
            try:
                tokens = tokenize_line(source, code[offset:], number, offset + 1)
                problem = None
            except SpecError as error:
                tokens, problem = [], error.detached()
        if not starts_new and current is not None:
            continues = (current.depth > 0 or current.ends_open
                         or (current.tokens and current.tokens[-1].kind in ("ARROW", "PIPE"))
                         or (tokens and tokens[0].kind in ("ARROW", "PIPE")))
            starts_new = not continues
        if starts_new or current is None:
            if current is not None:
                yield current
            if header:
                current = _Statement("model", number, header.group(1),
                                     Span(number, header.start(1) + 1, len(header.group(1))))
            else:
                current = _Statement("let" if let else "bare", number)
                if let and len(tokens) > 1 and tokens[1].kind == "WORD":
                    current.name = tokens[1].text
        current.tokens.extend(tokens)
        current.arrows += arrows
        if problem is not None and current.error is None:
            current.error = problem
        if tokens:  # the language has no strings: brackets in the code are bracket tokens
            body = code[offset:]
            current.depth += (body.count("(") + body.count("[") - body.count(")")
                              - body.count("]"))
        current.ends_open = header is not None and not tokens
    if current is not None:
        yield current
