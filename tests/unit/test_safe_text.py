"""Text from the data made inert for a terminal, markdown, a CSV cell and a plotly label."""

from __future__ import annotations

import csv
import io
import re

import pytest
from markdown_it import MarkdownIt

from pipeline.safe_text import (
    MAX_LISTED,
    MAX_NAME_CHARS,
    cut,
    for_csv,
    for_markdown,
    for_plotly,
    for_terminal,
    listed,
)

# What an anonymous visitor can put in utm_campaign (or a cost file in a campaign).
TERMINAL_ATTACKS = [
    "\x1b]0;owned title\x07",  # set the window title
    "\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\",  # OSC 8 hyperlink
    "ok\rFAKE LINE",  # carriage return overwrites what came before
    "\x1b[2J\x1b[H",  # clear the screen
    "\x9b31m",  # C1 CSI
    "abc\u202edcba",  # right-to-left override
    "a\nb",
    "\x7f\x00",
]
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


@pytest.mark.parametrize("text", TERMINAL_ATTACKS)
def test_terminal_text_has_no_control_character(text: str) -> None:
    shown = for_terminal(text)
    assert not CONTROL.search(shown)
    assert "\\x" in shown or "\\u" in shown  # shown, not dropped


def test_terminal_text_keeps_ordinary_text() -> None:
    ordinary = "google/cpc/Spring Sale \u2013 \u00e9t\u00e9 \U0001f338"
    assert for_terminal(ordinary) == ordinary
    assert for_terminal("\x1b]0;t\x07") == "\\x1b]0;t\\x07"


@pytest.mark.parametrize("first", ["=", "+", "-", "@", "\t", "\r"])
def test_a_csv_text_cell_never_starts_a_formula(first: str) -> None:
    cell = for_csv(first + 'HYPERLINK("http://evil.example","x")')
    assert cell.startswith("'")
    # And as a spreadsheet reads the file: one row, one cell, the guard first.
    buffer = io.StringIO()
    csv.writer(buffer).writerow([cell, -1.5])
    (row,) = list(csv.reader(io.StringIO(buffer.getvalue())))
    assert row == [cell, "-1.5"]
    assert row[0][0] == "'"


def test_a_harmless_csv_cell_is_unchanged() -> None:
    assert for_csv("spring sale") == "spring sale"
    assert for_csv("a=b") == "a=b"


MARKDOWN_ATTACKS = [
    "![x](http://evil.example/x.png)",
    "[click](http://evil.example)",
    "<a href='http://evil.example'>x</a>",
    "<img src=x onerror=alert(1)>",
    "a | b | c",
    "http://evil.example/autolink",
    "www.evil.example",
    "<http://evil.example>",
    "**bold** _it_ `code`",
    "# heading",
]


def _markdown() -> MarkdownIt:
    """CommonMark with GFM tables (Prefect's UI renders artifacts as GFM)."""
    return MarkdownIt("commonmark").enable("table")


@pytest.mark.parametrize("text", MARKDOWN_ATTACKS)
def test_markdown_text_renders_as_the_text_itself(text: str) -> None:
    cell = for_markdown(text)
    table = f"| check | detail |\n|---|---|\n| x | {cell} |\n"
    rendered = _markdown().render(table)
    assert "<a" not in rendered and "<img" not in rendered
    assert "<strong>" not in rendered and "<em>" not in rendered and "<code>" not in rendered
    assert rendered.count("<td>") == 2  # no table break
    # What a reader sees is the text (HTML-escaped by the renderer).
    assert _markdown().render(cell).strip().startswith(("<p>", "<h"))


def test_plotly_labels_carry_no_tag_and_no_template_field() -> None:
    label = for_plotly('<a href="javascript:alert(1)">x</a> %{x} & <img src=x onerror=alert(1)>')
    assert "<" not in label and ">" not in label and "%{" not in label
    assert "&lt;a href" in label and "&amp;" in label


def test_lists_are_capped_and_each_name_is_cut() -> None:
    names = [f"name-{i}-" + "x" * 500 for i in range(25)]
    shown = listed(names)
    assert shown.endswith(" and 15 more")
    assert shown.count("name-") == MAX_LISTED
    assert len(shown) <= MAX_LISTED * (MAX_NAME_CHARS + 2) + 20
    assert listed(["a", "b"]) == "a, b"
    assert cut("x" * 100) == "x" * (MAX_NAME_CHARS - 1) + "\u2026"
