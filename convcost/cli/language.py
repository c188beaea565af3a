"""``convcost language``: the chain language's reference, from the text shipped in the package
(``convcost/language.md``, the same text as ``docs/language.md``), since a wheel has no docs/."""

from __future__ import annotations

import re
from typing import NamedTuple

import click

from convcost.cli.base import EXIT_BAD_INPUT, EXIT_OK, cli

#: What ``convcost language`` prints without a topic.
DEFAULT_TOPICS = ("grammar summary", "counting conventions")


class Section(NamedTuple):
    """A ``##`` section of the reference: its heading and its text (heading included)."""

    heading: str
    text: str


def reference_text() -> str:
    """The whole language reference (Markdown)."""
    from importlib import resources  # here only: it costs start-up time (tempfile, pathlib)

    return resources.files("convcost").joinpath("language.md").read_text(encoding="utf-8")


def printable(text: str) -> str:
    """``text`` without its HTML comments (notes for the maintainers of the file)."""
    return re.sub(r"<!--.*?-->\n\n?", "", text, flags=re.DOTALL)


def sections(text: str, level: int = 2) -> list[Section]:
    """The sections of ``text`` whose headings have ``level`` '#'s, in order (deeper
    subsections stay inside theirs, a shallower heading ends one); headings inside fenced
    code blocks are not headings."""
    found: list[Section] = []
    lines: list[str] = []
    heading, fenced = "", False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        depth = len(line) - len(line.lstrip("#"))
        if not fenced and 1 <= depth <= level and line[depth:depth + 1] == " ":
            if heading:
                found.append(Section(heading, "\n".join(lines).rstrip() + "\n"))
            heading, lines = (line[depth + 1:].strip() if depth == level else ""), []
        if heading:
            lines.append(line)
    if heading:
        found.append(Section(heading, "\n".join(lines).rstrip() + "\n"))
    return found


def matching(all_sections: list[Section], topic: str) -> list[Section]:
    """The sections whose heading contains ``topic`` (any case)."""
    wanted = topic.lower()
    return [section for section in all_sections if wanted in section.heading.lower()]


@cli.command(short_help="The chain language's grammar, layers and conventions.")
@click.argument("topic", required=False)
@click.option("--all", "everything", is_flag=True, help="Print the whole reference.")
@click.pass_context
def language(ctx: click.Context, topic: str | None, everything: bool) -> None:
    """The chain language: grammar, layers, options and counting conventions.

    Without TOPIC, prints the grammar summary and the counting conventions, then the list of
    sections; TOPIC picks the sections whose heading contains it (e.g. "paths", "padding",
    "fragments"); --all prints the whole reference.
    """
    text = printable(reference_text())
    if everything:
        click.echo(text, nl=False)
        ctx.exit(EXIT_OK)
    found = sections(text)
    if topic is None:
        chosen = [section for wanted in DEFAULT_TOPICS for section in matching(found, wanted)]
    else:
        # A topic that names no section may name subsections ('padding', 'fragments').
        chosen = matching(found, topic) or matching(sections(text, 3), topic)
        if not chosen:
            click.echo(f"convcost: error: no section of the language reference matches "
                       f"'{topic}'; the sections are: "
                       f"{', '.join(section.heading for section in found)}", err=True)
            ctx.exit(EXIT_BAD_INPUT)
    click.echo("\n".join(section.text for section in chosen), nl=False)
    if topic is None:
        click.echo("\nSections (convcost language TOPIC, or --all): "
                   + ", ".join(section.heading for section in found))
    ctx.exit(EXIT_OK)
