"""Spreadsheet cells from data stay text: a register's names never become formulas.

A spreadsheet that opens a CSV file reads a cell beginning with ``=``, ``+``, ``-`` or
``@`` (and, in some, a tab or a carriage return) as a formula, which can run a command
or send data away (OWASP, "CSV Injection"). Every CSV writer of the package passes its
cells through :func:`csv_cell`, :func:`csv_row`, :func:`csv_frame` or :func:`frame_csv`:
a text that begins with one of those characters is written with a single quote ``'``
in front, which spreadsheets show as text (and a text holding a carriage return is
always written in double quotes, so that it cannot start a row of its own). Numbers
stay numbers: only text is touched, so a negative number in a numeric column is written
as it is, while ``"-5"`` as text from a register gets the quote. A text that already
begins with quotes and then one of those characters gets one quote more, so
:func:`text_from_csv` gives back exactly the text that was written.

Workbooks (XLSX) hold typed cells: a text from data is written as a string cell, never
as a formula (XlsxWriter's ``write_string``; openpyxl's cell forced to type ``s`` by
:func:`openpyxl_text`), so it shows as written, without a quote. A text that
:func:`looks_like_formula` also gets Excel's quote-prefix style, so that it stays text
when the cell is edited. Formulas the package writes itself are not data and may stay
formulas.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable
from typing import Any

import pandas as pd

#: What a text cell must not begin with (OWASP's list).
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

#: A text quoted on writing: a trigger after any number of quotes (see the module doc).
_QUOTED = re.compile(r"'*[=+\-@\t\r]")
#: A written text to unquote: a quote, then any quotes, then a trigger.
_UNQUOTE = re.compile(r"'+[=+\-@\t\r]")
_FIRST = frozenset("'=+-@\t\r")


def looks_like_formula(text: str) -> bool:
    """Whether a spreadsheet would read ``text`` as a formula: it begins with a trigger."""
    return text.startswith(TRIGGERS)


def csv_text(text: str) -> str:
    """``text`` as a CSV cell: with ``'`` in front if it begins with a trigger."""
    if text[:1] in _FIRST and _QUOTED.match(text):
        return "'" + text
    return text


def csv_cell(value: Any) -> Any:
    """A cell for a CSV writer: text through :func:`csv_text`, anything else as it is."""
    return csv_text(value) if isinstance(value, str) else value


def csv_row(values: Iterable[Any]) -> list[Any]:
    """A row of cells for :func:`csv.writer` (see :func:`csv_cell`)."""
    return [csv_cell(value) for value in values]


def csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` for ``to_csv``: the text cells of its text columns through :func:`csv_text`.

    Numeric, boolean and date columns are left alone, and so is a frame with no text to
    quote (it is returned as it is, not copied).
    """
    out = frame
    for position in range(frame.shape[1]):
        column = frame.iloc[:, position]
        risky = _text_matching(column, _QUOTED.pattern)
        if risky is None or not risky.any():
            continue
        if out is frame:
            out = frame.copy()
        values = column.to_numpy(dtype=object, copy=True)
        hits = risky.to_numpy(dtype=bool)
        values[hits] = ["'" + text for text in values[hits]]
        quoted: Any = pd.Series(values, index=column.index, dtype=column.dtype)
        out.isetitem(position, quoted)
    return out


def frame_csv(frame: pd.DataFrame, *, as_text: bool = False, **options: Any) -> str:
    """``frame`` as CSV text, by pandas ``to_csv(index=False, **options)``, its text
    through :func:`csv_frame` (then every cell as ``str`` if ``as_text``).

    Python's CSV writer quotes a cell that holds a line break only if the break is in
    its line terminator: with ``"\\n"`` lines, a carriage return inside a text would be
    written bare, and a spreadsheet would start a new row there, beginning with the rest
    of the text (a formula, say). A frame with such a text is written with every text
    cell in double quotes (``csv.QUOTE_NONNUMERIC``); any other as pandas writes it.
    """
    safe = csv_frame(frame)
    if as_text:
        safe = safe.astype(str)
    breaks = (_text_matching(safe.iloc[:, i], "\r", regex=False) for i in range(safe.shape[1]))
    if "\r" not in options.get("lineterminator", os.linesep) and any(
            found is not None and found.any() for found in breaks):
        options["quoting"] = csv.QUOTE_NONNUMERIC
    return safe.to_csv(index=False, **options)


def _text_matching(column: pd.Series, pattern: str, *, regex: bool = True) -> pd.Series | None:
    """Which cells of a text column are text that matches ``pattern`` at the start (or,
    without ``regex``, holds it anywhere); None for a column that holds no text."""
    if not (column.dtype == object or isinstance(column.dtype, pd.StringDtype)):
        return None
    try:
        if regex:
            return column.str.match(pattern, na=False).astype(bool)
        return column.str.contains(pattern, regex=False, na=False).astype(bool)
    except AttributeError:  # an object column without a single text
        return None


def text_from_csv(text: str) -> str:
    """The text a :func:`csv_text` cell was made from (for a reader of our own CSVs)."""
    return text[1:] if _UNQUOTE.match(text) else text


def frame_from_csv(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` read from a CSV of ours, each text cell through :func:`text_from_csv`
    (in place, and returned)."""
    for position in range(frame.shape[1]):
        column = frame.iloc[:, position]
        quoted = _text_matching(column, _UNQUOTE.pattern)
        if quoted is not None and quoted.any():
            values = column.to_numpy(dtype=object, copy=True)
            hits = quoted.to_numpy(dtype=bool)
            values[hits] = [text[1:] for text in values[hits]]
            unquoted: Any = pd.Series(values, index=column.index, dtype=column.dtype)
            frame.isetitem(position, unquoted)
    return frame


def openpyxl_text(cell: Any) -> None:
    """Keep an openpyxl cell holding text a string cell (openpyxl makes ``"=..."`` a
    formula and ``"#N/A"`` an error); quote-prefix it if it looks like a formula."""
    value = cell.value
    if isinstance(value, str):
        cell.data_type = "s"
        if looks_like_formula(value):
            cell.quotePrefix = True
