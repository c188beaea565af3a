"""The chain language: tokenizer, syntax tree and recursive-descent parser."""

from __future__ import annotations

from convcost.lang.parser import ParsedSource, parse_chain, parse_source

__all__ = ["ParsedSource", "parse_chain", "parse_source"]
