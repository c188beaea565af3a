"""Tokens of the chain language, one physical line at a time.

Named token rules in one master regular expression, in the spirit of
``packaging._tokenizer``. Comments and white space are dropped here.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from convcost.errors import Source, Span, SpecError

#: Token kinds and their rules, tried in this order at each position.
RULES: dict[str, str] = {
    "WS": r"[ \t\r\f\v]+",
    "COMMENT": r"\#.*",
    "ARROW": r"->|→",
    "FLOAT": r"\d+\.\d*|\.\d+",
    "DIMS": r"\d+(?:[xX×]\d+)*",
    "REF": r"\$[A-Za-z_][A-Za-z0-9_]*",
    "WORD": r"[A-Za-z_][A-Za-z0-9_×]*",
    "LPAREN": r"\(",
    "RPAREN": r"\)",
    "LBRACKET": r"\[",
    "RBRACKET": r"\]",
    "PIPE": r"\|",
    "STAR": r"\*",
    "COMMA": r",",
    "EQUALS": r"=",
    "COLON": r":",
}
#: One match per token, the white space before it included (matching white space as tokens
#: of its own doubled the matches: tokenizing is a third of parsing).
#: re.ASCII: ``\d`` is 0-9 only, so other scripts' digits ('٣', '²') are refused here as they
#: are by the option parsers, never half-accepted.
#: Only the error path scans with it (see :data:`_PAIRS`), so ``re`` compiles it there, once.
_MASTER = "(?:" + RULES["WS"] + ")?(?:" + "|".join(
    f"(?P<{name}>{rule})" for name, rule in RULES.items() if name != "WS") + ")"
_WS = " \t\r\f\v"

#: How each token kind is named in messages.
PHRASES: dict[str, str] = {
    "ARROW": "'->'",
    "FLOAT": "a number",
    "DIMS": "a number",
    "REF": "a fragment reference",
    "WORD": "a name",
    "LPAREN": "'('",
    "RPAREN": "')'",
    "LBRACKET": "'['",
    "RBRACKET": "']'",
    "PIPE": "'|'",
    "STAR": "'*'",
    "COMMA": "','",
    "EQUALS": "'='",
    "COLON": "':'",
    "END": "the end of the statement",
}


class Token(NamedTuple):
    """One token: its kind (a key of :data:`RULES`, or ``END``), text and place."""

    kind: str
    text: str
    line: int
    column: int

    @property
    def span(self) -> Span:
        return Span(self.line, self.column, max(1, len(self.text)))


#: ``tuple.__new__`` builds a Token from all its fields without the keyword ``__new__``.
_new_token = tuple.__new__

#: The fast path: every (white space, token) pair of a line in one ``findall`` (the same rules,
#: in the same order, as :data:`_MASTER`), each token's kind told by its first character.
_PAIRS = re.compile(f"({RULES['WS']}|)(" + "|".join(
    rule for name, rule in RULES.items() if name != "WS") + ")", re.ASCII)
_KIND_OF_FIRST = {
    **dict.fromkeys("0123456789", "DIMS"), ".": "FLOAT", "-": "ARROW", "→": "ARROW",
    "$": "REF", **dict.fromkeys("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_", "WORD"),
    "(": "LPAREN", ")": "RPAREN", "[": "LBRACKET", "]": "RBRACKET", "|": "PIPE", "*": "STAR",
    ",": "COMMA", "=": "EQUALS", ":": "COLON", "#": "COMMENT",
}


def tokenize_line(source: Source, text: str, line: int, column: int = 1) -> list[Token]:
    """Tokens of ``text``, which starts at ``line``/``column`` of ``source``.

    Raises :class:`SpecError` at the first character no rule matches.
    """
    tokens: list[Token] = []
    append = tokens.append
    kinds = _KIND_OF_FIRST
    pos = column
    for space, token in _PAIRS.findall(text):
        pos += len(space)
        kind = kinds[token[0]]
        if kind == "DIMS" and "." in token:  # FLOAT is tried before DIMS: '3.5' is a number
            kind = "FLOAT"
        elif kind == "COMMENT":
            return tokens
        append(_new_token(Token, (kind, token, line, pos)))
        pos += len(token)
    if pos - column != len(text.rstrip(_WS)):  # findall skipped what no rule matches
        _raise_at_unmatched(source, text, line, column)
    return tokens


def _raise_at_unmatched(source: Source, text: str, line: int, column: int) -> None:
    """The located error for the first character of ``text`` that no rule matches."""
    pos = 0
    for found in re.finditer(_MASTER, text, re.ASCII):
        if found.start() != pos:
            break
        pos = found.end()
    while text[pos] in _WS:  # point at the character, not the white space before it
        pos += 1
    raise SpecError.at(
        source, Span(line, column + pos),
        f"unexpected character {text[pos]!r}; a chain is made of layers joined by '->'",
    )


def strip_comment(text: str) -> str:
    """``text`` without its ``#`` comment (the language has no strings, so any ``#`` starts one)."""
    cut = text.find("#")
    return text if cut < 0 else text[:cut]
