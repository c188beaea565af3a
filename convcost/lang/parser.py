"""Recursive-descent parser for chains and spec files.

Each ``_parse_*`` method's docstring gives the grammar rule it implements. Errors carry the
source, line and column of the offending token and say what would have been valid.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from itertools import islice
from typing import NamedTuple

from convcost.errors import Source, Span, SpecError, SpecWarning
from convcost.lang.ast import (
    BranchesSpec,
    Chain,
    FragmentSpec,
    GateSpec,
    InputSpec,
    Item,
    LayerSpec,
    ModelSpec,
    RepeatSpec,
    ResidualSpec,
    Sequence,
    SplitSpec,
)
from convcost.lang.tokenizer import PHRASES, Token, strip_comment, tokenize_line
from convcost.lang.vocab import (
    BLOCK_WORDS,
    MAX_LAYERS,
    MAX_SIZE,
    Arg,
    build_layer,
    layer_word,
    too_large,
    unknown_layer_message,
    whole,
)

#: Deepest nesting of brackets and groups accepted (deeper input gets a clear error, not a
#: RecursionError).
MAX_DEPTH = 64
#: Errors reported per source; a file full of errors ends with a note instead of megabytes.
MAX_ERRORS = 100
#: Fragment names quoted by an "undefined fragment" message (the nearest ones).
_SUGGESTED = 3
#: How many of the latest fragments did-you-mean compares an undefined name with.
_CANDIDATES = 1000
INPUT_HELP = "a channel count like 256 or a map like 56x56x256"
_MODEL_HEADER = re.compile(r"\s*([A-Za-z0-9_.\-]+)\s*:")
_LET_HEADER = re.compile(r"\s*let(?=\s|$)", re.IGNORECASE)
_FRAGMENT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class Fragment(NamedTuple):
    """A ``let`` definition: its layers, or None when its definition had errors."""

    body: Sequence | None
    line: int


class _Parser:
    """Parses one statement's tokens."""

    def __init__(self, source: Source, tokens: list[Token],
                 fragments: dict[str, Fragment], defining: str | None = None) -> None:
        self.source = source
        last = tokens[-1] if tokens else None
        end_line = last.line if last else 1
        end_col = last.column + len(last.text) if last else 1
        self.tokens = tokens + [Token("END", "", end_line, end_col)]
        self.pos = 0
        self.depth = 0
        self.fragments = fragments
        self.defining = defining
        self.layers = 0  # layers written so far, against MAX_LAYERS

    # -- helpers ------------------------------------------------------------------------------

    @property
    def token(self) -> Token:
        return self.tokens[self.pos]

    def check(self, kind: str) -> bool:
        return self.tokens[self.pos].kind == kind

    def advance(self) -> Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def error(self, message: str, token: Token | None = None) -> SpecError:
        token = token or self.token
        return SpecError.at(self.source, token.span, message)

    def found(self, token: Token | None = None) -> str:
        token = token or self.token
        return PHRASES["END"] if token.kind == "END" else f"'{token.text}'"

    def expect(self, kind: str, phrase: str) -> Token:
        """Consume a ``kind`` token or fail with "expected <phrase>, found ..."."""
        if not self.check(kind):
            raise self.error(f"expected {phrase}, found {self.found()}")
        return self.advance()

    def text_between(self, start: int, stop: int) -> str:
        """The source text of tokens ``start`` to ``stop`` inclusive (by index, so finding
        them costs nothing; rebuilt compactly when written across lines)."""
        first, last = self.tokens[start], self.tokens[stop]
        if first.line == last.line:
            line = self.source.line_text(first.line)
            return line[first.column - 1: last.column - 1 + len(last.text)]
        # Written over several lines: rebuild it compactly, e.g. '3x3(64, s=2)'.
        return "".join(token.text + (" " if token.kind == "COMMA" else "")
                       for token in self.tokens[start: stop + 1])

    def dims(self, token: Token) -> tuple[int, ...]:
        """The numbers of a DIMS token: '56x56x256' -> (56, 56, 256); above MAX_SIZE is an
        error here, so no count downstream can grow without bound."""
        dims = _dims_of(token.text)
        if max(dims) > MAX_SIZE:
            raise self.error(too_large("a size or count"), token)
        return dims

    def span_between(self, first: Token, last: Token) -> Span:
        if first.line == last.line:
            return Span(first.line, first.column, last.column + len(last.text) - first.column)
        return first.span

    def enter(self, token: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"brackets nest deeper than {MAX_DEPTH} levels", token)

    # -- grammar ------------------------------------------------------------------------------

    def parse_chain(self) -> Chain:
        """chain := input '->' sequence END"""
        chain_input = self._parse_input()
        self.expect("ARROW", "'->' and the first layer after the input")
        body = self._parse_sequence()
        self._expect_end()
        return Chain(chain_input, body)

    def parse_fragment(self) -> Sequence:
        """fragment := sequence END   (the layers of a ``let``, without an input)"""
        body = self._parse_sequence()
        self._expect_end()
        return body

    def _expect_end(self) -> None:
        if not self.check("END"):
            token = self.token
            if token.kind in ("RPAREN", "RBRACKET"):
                raise self.error(f"unmatched '{token.text}': nothing is open here")
            raise self.error(f"expected '->' or the end of the statement, found {self.found()}")

    def _parse_input(self) -> InputSpec:
        """input := DIMS   (``C`` or ``HxWxC``)"""
        token = self.token
        if token.kind in ("END", "ARROW"):
            raise self.error(f"missing input: a chain starts with {INPUT_HELP}")
        parts = self.dims(token) if token.kind == "DIMS" else []
        looks_like_layer = token.kind in ("WORD", "REF", "LBRACKET", "LPAREN") or (
            len(parts) == 2 and self.tokens[self.pos + 1].kind == "LPAREN")
        if looks_like_layer:
            raise self.error(f"missing input: a chain starts with {INPUT_HELP}, before its first "
                             f"layer")
        if len(parts) not in (1, 3):
            raise self.error(f"bad input {self.found()}; expected {INPUT_HELP}")
        self.advance()
        if min(parts) < 1:
            raise self.error("input sizes must be at least 1", token)
        if len(parts) == 1:
            return InputSpec(None, None, parts[0], token.span)
        return InputSpec(parts[0], parts[1], parts[2], token.span)

    def _parse_sequence(self) -> Sequence:
        """sequence := term ('->' term)*"""
        first = self.token
        items = [self._parse_term()]
        while self.check("ARROW"):
            self.advance()
            items.append(self._parse_term())
        return Sequence(tuple(items), first.span)

    def _parse_term(self) -> Item:
        """term := atom ('*' DIMS)*"""
        item = self._parse_atom()
        while self.check("STAR"):
            star = self.advance()
            count_token = self.token
            if count_token.kind != "DIMS" or len(self.dims(count_token)) != 1:
                raise self.error(f"expected a repeat count after '*', e.g. *3, found "
                                 f"{self.found()}")
            self.advance()
            count = self.dims(count_token)[0]
            if count < 1:
                raise self.error(f"repeat count must be at least 1, not {count}", count_token)
            item = RepeatSpec(item, count, self.span_between(star, count_token))
        return item

    def _parse_atom(self) -> Item:
        """atom := layer | '(' sequence ')' | branches | residual | gate | split | REF"""
        token = self.token
        kind = token.kind
        if kind == "LPAREN":
            self.advance()
            self.enter(token)
            body = self._parse_sequence()
            self._close("RPAREN", token)
            self.depth -= 1
            return body
        if kind == "LBRACKET":
            return self._parse_branches()
        if kind == "REF":
            return self._parse_ref()
        if kind == "WORD" and token.text.lower() in BLOCK_WORDS and \
                self.tokens[self.pos + 1].kind == "LBRACKET":
            word = token.text.lower()
            if word == "res":
                return self._parse_residual()
            if word == "gate":
                return self._parse_gate()
            return self._parse_split()
        if kind in ("WORD", "DIMS"):
            return self._parse_layer()
        if kind == "END":
            raise self.error("expected a layer after '->', found the end of the "
                             "statement")
        raise self.error(f"expected a layer, found {self.found()}")

    def _close(self, kind: str, opener: Token) -> Token:
        closer = ")" if kind == "RPAREN" else "]"
        if not self.check(kind):
            raise self.error(f"expected '{closer}' to close the '{opener.text}' at line "
                             f"{opener.line}, column {opener.column}, found {self.found()}")
        return self.advance()

    def _parse_branches(self) -> BranchesSpec:
        """branches := '[' sequence ('|' sequence)* ']'"""
        opener = self.advance()
        self.enter(opener)
        branches = self._parse_parts()
        self._close("RBRACKET", opener)
        self.depth -= 1
        return BranchesSpec(branches, opener.span)

    def _parse_parts(self) -> tuple[Sequence, ...]:
        """parts := sequence ('|' sequence)*   (inside '[' ... ']', each part non-empty)"""
        parts = [self._parse_branch()]
        while self.check("PIPE"):
            self.advance()
            parts.append(self._parse_branch())
        return tuple(parts)

    def _parse_branch(self) -> Sequence:
        if self.token.kind in ("PIPE", "RBRACKET"):
            raise self.error("empty branch: every branch needs at least one layer (write 'id' "
                             "for an identity branch)")
        return self._parse_sequence()

    def _parse_residual(self) -> ResidualSpec:
        """residual := 'res' '[' sequence ('|' sequence)? ']'"""
        word = self.advance()
        opener = self.advance()
        self.enter(opener)
        body = self._parse_branch()
        shortcut = None
        if self.check("PIPE"):
            self.advance()
            shortcut = self._parse_branch()
            if self.check("PIPE"):
                raise self.error("a residual block has a body and at most one shortcut: "
                                 "res[A] or res[A | S]")
        self._close("RBRACKET", opener)
        self.depth -= 1
        return ResidualSpec(body, shortcut, self.span_between(word, opener))

    def _parse_gate(self) -> GateSpec:
        """gate := 'gate' '[' sequence ']'"""
        word = self.advance()
        opener = self.advance()
        self.enter(opener)
        if self.token.kind in ("PIPE", "RBRACKET"):
            raise self.error("empty gate: write the layers that compute the gate, e.g. "
                             "gate[gap -> 1x1(8) -> relu -> 1x1(32) -> sigmoid]")
        body = self._parse_sequence()
        if self.check("PIPE"):
            raise self.error("a gate has one body: gate[A] multiplies the input by A of the "
                             "input")
        self._close("RBRACKET", opener)
        self.depth -= 1
        return GateSpec(body, self.span_between(word, opener))

    def _parse_split(self) -> SplitSpec:
        """split := 'split' '[' sequence ('|' sequence)+ ']'"""
        word = self.advance()
        opener = self.advance()
        self.enter(opener)
        parts = self._parse_parts()
        if len(parts) < 2:
            raise self.error("a split needs at least two parts, e.g. split[id | 3x3(32)]")
        self._close("RBRACKET", opener)
        self.depth -= 1
        return SplitSpec(parts, self.span_between(word, opener))

    def _parse_ref(self) -> FragmentSpec:
        """ref := '$' NAME   (a fragment defined earlier with ``let``)"""
        token = self.advance()
        name = token.text[1:]
        if name == self.defining:
            raise self.error(f"fragment ${name} refers to itself; a fragment may only use "
                             f"fragments defined before it", token)
        fragment = self.fragments.get(name)
        if fragment is None:
            raise self.error(f"undefined fragment ${name}; define it first with "
                             f"'let {name} = ...'{_nearest(name, self.fragments)}", token)
        if fragment.body is None:
            raise self.error(f"fragment ${name} (line {fragment.line}) has errors", token)
        return FragmentSpec(name, fragment.body, token.span)

    def _parse_layer(self) -> LayerSpec:
        """layer := (DIMS | WORD) ['(' [arg (',' arg)*] ')']"""
        self.layers += 1
        if self.layers > MAX_LAYERS:
            raise self.error(f"more than {MAX_LAYERS:,} layers in one statement, the limit "
                             f"per model")
        start = self.pos
        head = self.advance()
        if head.kind == "DIMS":
            parts = self.dims(head)
            if len(parts) != 2:
                raise self.error(f"expected a layer, found '{head.text}' (a kernel is "
                                 f"written KxK, e.g. 3x3(64); an input only starts a chain)",
                                 head)
            if not self.check("LPAREN"):
                raise self.error(f"a {head.text} convolution needs its output channels, e.g. "
                                 f"{head.text}(64)", head)
            kind, kernel_hw, factor = "conv", (parts[0], parts[1]), 1
        else:
            known = layer_word(head.text)
            if known is None:
                raise self.error(unknown_layer_message(head.text), head)
            kind, kernel_hw, factor = known
        if min(kernel_hw) < 1 or factor < 1:
            raise self.error(f"sizes in '{head.text}' must be at least 1", head)
        if max(kernel_hw) > MAX_SIZE or factor > MAX_SIZE:
            raise self.error(too_large("a kernel size or factor"), head)
        args: list[Arg] = []
        last = head
        remembered = self._remembered(head, kind)
        if remembered is not None:
            return remembered
        if self.check("LPAREN"):
            opener = self.advance()
            if not self.check("RPAREN"):
                args.append(self._parse_arg())
                while self.check("COMMA"):
                    self.advance()
                    args.append(self._parse_arg())
            last = self._close("RPAREN", opener)
        text = self.text_between(start, self.pos - 1)
        layer = build_layer(self.source, kind, text, self.span_between(head, last), kernel_hw,
                            factor, args)
        if len(_LAYERS) >= _MAX_REMEMBERED:
            _LAYERS.clear()
        _LAYERS[kind, text] = layer
        return layer

    def _remembered(self, head: Token, kind: str) -> LayerSpec | None:
        """The layer starting at ``head`` (already consumed) if the same text was built
        before, placed at its own span, with the tokens after ``head`` consumed; else None.

        Files repeat a few layer texts ('bn', 'relu', '3x3(64)') hundreds of times, and the
        text alone decides a layer (its span aside): this skips re-checking its options."""
        tokens, pos = self.tokens, self.pos
        last = head
        if tokens[pos].kind == "LPAREN":  # the arguments hold no brackets: find the ')'
            stop = pos + 1
            while tokens[stop].kind in _ARG_TOKENS:
                stop += 1
            if tokens[stop].kind != "RPAREN":
                return None  # malformed: the full parse reports it
            last = tokens[stop]
            pos = stop + 1
        if last.line != head.line:
            return None
        text = self.source.line_text(head.line)[head.column - 1: last.column - 1 + len(last.text)]
        layer = _LAYERS.get((kind, text))
        if layer is None:
            return None
        self.pos = pos
        return _new_layer(LayerSpec, (layer[0], layer[1], self.span_between(head, last),
                                      *layer[3:]))

    def _parse_arg(self) -> Arg:
        """arg := value | NAME '=' value   (value := DIMS | FLOAT | WORD)"""
        first = self.token
        if first.kind not in ("DIMS", "FLOAT", "WORD"):
            raise self.error(f"expected an option such as 64, s=2, p=valid or nobias, found "
                             f"{self.found()}")
        self.advance()
        if first.kind == "WORD" and self.check("EQUALS"):
            self.advance()
            value = self.token
            if value.kind not in ("DIMS", "FLOAT", "WORD"):
                raise self.error(f"expected a value for '{first.text}', found {self.found()}")
            self.advance()
            return Arg(first.text, value.text, self.span_between(first, value), value.span)
        return Arg(None, first.text, first.span, first.span)


#: Layers built so far, by (kind, text as written): see ``_Parser._remembered``.
_LAYERS: dict[tuple[str, str], LayerSpec] = {}
_MAX_REMEMBERED = 4096
#: Tokens that may appear between a layer's '(' and ')'.
_ARG_TOKENS = frozenset(("DIMS", "FLOAT", "WORD", "EQUALS", "COMMA"))
#: ``tuple.__new__`` builds a NamedTuple from all its fields without the keyword ``__new__``.
_new_layer = tuple.__new__


@lru_cache(maxsize=1024)
def _dims_of(text: str) -> tuple[int, ...]:
    # Cached: files repeat the same few sizes ('1x1', '3x3', '56x56x64') over and over.
    return tuple(whole(part) for part in text.translate(_TIMES).split("x"))


def _nearest(name: str, fragments: dict[str, Fragment]) -> str:
    """' (did you mean $a or $b?)' naming the few nearest fragments, never all of them."""
    if not fragments:
        return " (no fragment is defined before this line)"
    import difflib  # only on this error path: it costs start-up time

    # Bounded: a file can define a million fragments and use 100 undefined ones, and
    # difflib over all of them took minutes; the most recently defined are the likely ones.
    recent = list(islice(reversed(fragments), _CANDIDATES))
    close = difflib.get_close_matches(name, recent, n=_SUGGESTED, cutoff=0.6)
    if not close:
        among = "none is close" if len(fragments) <= _CANDIDATES else \
            f"none of the last {_CANDIDATES:,} is close"
        return f" ({len(fragments):,} fragments are defined before this line; {among})"
    return f" (did you mean {' or '.join(f'${known}' for known in close)}?)"


_TIMES = str.maketrans({"X": "x", "×": "x"})


# -- statements and files ---------------------------------------------------------------------


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
            chain = _Parser(source, statement.tokens, fragments).parse_chain()
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
    parser = _Parser(source, tokens[2:], fragments, defining=name)
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
