"""The grammar of one statement: a recursive-descent parser over its tokens.

Each ``_parse_*`` method's docstring gives the grammar rule it implements. Errors carry the
source, line and column of the offending token and say what would have been valid. Grouping
lines into statements and parsing whole files is :mod:`convcost.lang.parser`.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import islice
from typing import NamedTuple

from convcost.errors import Source, Span, SpecError
from convcost.lang.ast import (
    BranchesSpec,
    Chain,
    FragmentSpec,
    GateSpec,
    InputSpec,
    Item,
    LayerSpec,
    RepeatSpec,
    ResidualSpec,
    Sequence,
    SplitSpec,
)
from convcost.lang.tokenizer import PHRASES, Token
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
#: Fragment names quoted by an "undefined fragment" message (the nearest ones).
_SUGGESTED = 3
#: How many of the latest fragments did-you-mean compares an undefined name with.
_CANDIDATES = 1000
INPUT_HELP = "a channel count like 256 or a map like 56x56x256"


class Fragment(NamedTuple):
    """A ``let`` definition: its layers, or None when its definition had errors."""

    body: Sequence | None
    line: int


class Parser:
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
        tokens = self.tokens
        first = tokens[self.pos]
        items: list[Item] = []
        append = items.append
        while True:
            # The hot loop of parsing: a layer whose text was parsed before (nearly all of
            # them) is taken straight from the cache, without the term/atom/layer descent.
            layer = self._known_layer()
            append(self._parse_term() if layer is None else
                   self._parse_term(layer) if tokens[self.pos].kind == "STAR" else layer)
            if tokens[self.pos].kind != "ARROW":
                return Sequence(tuple(items), first.span)
            self.pos += 1

    def _parse_term(self, atom: Item | None = None) -> Item:
        """term := atom ('*' DIMS)*   (``atom``: the atom already parsed, if any)"""
        item = self._parse_atom() if atom is None else atom
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

    def _count_layer(self) -> None:
        self.layers += 1
        if self.layers > MAX_LAYERS:
            raise self.error(f"more than {MAX_LAYERS:,} layers in one statement, the limit "
                             f"per model")

    def _parse_layer(self) -> LayerSpec:
        """layer := (DIMS | WORD) ['(' [arg (',' arg)*] ')']"""
        self._count_layer()
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
        _LAYERS[text] = layer
        return layer

    def _known_layer(self) -> LayerSpec | None:
        """The layer at the current token if the same text was parsed before, placed at its
        own span, its tokens consumed; else None (nothing consumed).

        Files repeat a few layer texts ('bn', 'relu', '3x3(64)') hundreds of times, and the
        text alone decides a layer (its span aside): this skips re-checking its options."""
        tokens, pos = self.tokens, self.pos
        head = tokens[pos]
        if head.kind not in _LAYER_HEADS:
            return None
        after = tokens[pos + 1].kind
        if after == "LPAREN":  # the arguments hold no brackets: find the ')'
            stop = pos + 2
            while tokens[stop].kind in _ARG_TOKENS:
                stop += 1
            last = tokens[stop]
            if last.kind != "RPAREN" or last.line != head.line:
                return None  # malformed, or written over lines: the full parse
            text = self.source.line_text(head.line)[head.column - 1: last.column]
        elif after == "LBRACKET":  # a block (res[...]), or a misplaced '[': the full parse
            return None
        else:
            last, stop, text = head, pos, head.text
        layer = _LAYERS.get(text)
        if layer is None:
            return None
        self._count_layer()
        self.pos = stop + 1
        column = head.column
        return _new_layer(LayerSpec, (layer[0], text, _new_span(
            Span, (head.line, column, last.column + len(last.text) - column)), *layer[3:]))

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


#: Layers built so far, by their text as written: see ``Parser._known_layer``.
_LAYERS: dict[str, LayerSpec] = {}
_MAX_REMEMBERED = 4096
#: Tokens that may appear between a layer's '(' and ')'.
_ARG_TOKENS = frozenset(("DIMS", "FLOAT", "WORD", "EQUALS", "COMMA"))
#: ``tuple.__new__`` builds a NamedTuple from all its fields without the keyword ``__new__``.
_new_layer = _new_span = tuple.__new__
#: Tokens a layer starts with.
_LAYER_HEADS = frozenset(("WORD", "DIMS"))


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
