"""Text from data, made safe for where an operator reads it: a terminal, markdown, a CSV
cell, a plotly label.

Campaign names, site ids and the other free text of events reach the operator's tools.
Whoever sent the event chose that text, so none of it may act there: an escape sequence
must not retitle a terminal, print a hyperlink or overwrite a line; a CSV cell must not be
a spreadsheet formula (OWASP "CSV injection"); markdown must not load a remote image or
show a link; a chart label must not become a link. Each function here shows the text as
it is, visibly, and makes it inert; none of them is reversible (they are for reading).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# C0 controls, DEL, C1 controls (ESC and CSI start terminal sequences; CR rewrites a line),
# Unicode's line and paragraph separators, and the bidirectional controls that make text
# read in another order than it is stored ("Trojan Source").
_CONTROLS = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def for_terminal(text: str) -> str:
    """`text` on one line, every control character shown as `\\xNN` (`\\uNNNN` for the
    bidirectional and separator ones): an ESC, OSC 8 hyperlink, title or CR cannot act."""
    return _CONTROLS.sub(_visible, text)


# A spreadsheet takes a cell that starts with one of these as a formula (OWASP).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def for_csv(text: str) -> str:
    """A text cell of a CSV: controls shown as for the terminal (the CSV is often read on
    one), and a cell a spreadsheet would run as a formula starts with `'`, which the
    spreadsheet shows as text. Only text cells: a number stays a number (-1.5)."""
    shown = for_terminal(text)
    return "'" + shown if text.startswith(FORMULA_STARTS) else shown


# Markdown's (and GitHub-flavoured markdown's) punctuation: links, images, emphasis, code,
# table cells, headings, HTML. Each gets a backslash, which CommonMark shows as the
# character itself.
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~&:\"'])")


def for_markdown(text: str) -> str:
    """`text` as literal markdown text, safe in a table cell: no link, image, HTML or
    table break, controls shown as for the terminal."""
    return _MARKDOWN.sub(r"\\\1", for_terminal(text))


def for_plotly(text: str) -> str:
    """`text` as a plotly label shows it: plotly.js renders a pseudo-HTML subset in
    labels, legends, ticks and hover text (`<a href>`, `<b>`, `<br>`, `<span style>`) and
    decodes HTML entities after it has read the tags, so `<` and `&` as entities show as
    themselves and open no tag. `%` as an entity too: in a hovertemplate `%{...}` is a
    template field."""
    escaped = for_terminal(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return escaped.replace("%", "&#37;")


# How many names a check or a CLI line lists, and how long each may be.
MAX_LISTED = 10
MAX_NAME_CHARS = 80


def cut(text: str, limit: int = MAX_NAME_CHARS) -> str:
    """`text`, cut to `limit` characters with an ellipsis when longer."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def listed(
    names: Sequence[str], total: int | None = None, limit: int = MAX_LISTED, sep: str = ", "
) -> str:
    """At most `limit` of `names`, each cut, then "and N more" for the rest of `total`
    (default: len(names); a caller that fetched only the first few passes the count)."""
    count = len(names) if total is None else total
    shown = sep.join(cut(name) for name in names[:limit])
    rest = count - min(len(names), limit)
    return f"{shown} and {rest} more" if rest > 0 else shown
