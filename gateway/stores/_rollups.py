"""How a read of the aggregates adds their rows up in the database, written once for both stores.

A stats read asks for a metric's histograms per hour, per UTC day or over a whole window, per
form or over the forms. Adding the rows up in SQL means fewer rows cross into Python: a year of
one metric by day is 365 rows per form and score, and over the window one per form and score.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

from voxloop_core import DAY_MS

#: What each histogram of a read covers: an hour, a UTC day, or the whole window.
Step = Literal["hour", "day", "window"]
#: The form of the histograms of a read that adds the forms up (no form can be named so).
ALL_FORMS: Final = "*"


def day_start(column: str) -> str:
    """SQL for the start of the UTC day holding ``column``, floored like Python's ``%``."""
    return f"({column} - (({column} % {DAY_MS}) + {DAY_MS}) % {DAY_MS})"


def rollup(
    table: str,
    column: str,
    native: Step,
    where: str,
    step: Step,
    per_form: bool,
    *,
    summed: bool = False,
    every_form: bool = True,
) -> str:
    """The SELECT of ``(form, start, score, count)`` rows of an aggregate table, by ``step``.

    Args:
        table: the table, whose rows are per ``native`` step (``hour`` or ``day``).
        column: its time column, which ``{filters}`` (left in the text) compare.
        where: the conditions every row meets (project, metric; the channel in PostgreSQL).
        step: what each row read covers; the start is 0 for the window.
        per_form: rows per form, else added up over the forms (form :data:`ALL_FORMS`).
        summed: the table also holds its rows added up over the forms, under the form
            :data:`ALL_FORMS` (the daily aggregates): a read over every form takes those.
        every_form: the read is of every form (no ``form`` condition among the filters).
    """
    if summed and not per_form and every_form:
        where, per_form = f"{where} AND form = '{ALL_FORMS}'", True  # the sums, as one form
    elif summed:
        where = f"{where} AND form <> '{ALL_FORMS}'"
    if step == native and per_form:
        return f"SELECT form, {column}, score, count FROM {table} WHERE {where}{{filters}}"
    start = column if step == native else "0" if step == "window" else day_start(column)
    keys = [*(["form"] if per_form else []), *([start] if step != "window" else []), "score"]
    form = "form" if per_form else f"'{ALL_FORMS}'"
    return (
        f"SELECT {form}, {start}, score, CAST(sum(count) AS bigint) FROM {table}"
        f" WHERE {where}{{filters}} GROUP BY {', '.join(keys)}"
    )


#: Each aggregate table, by the source a read names it: its time column, the step of its rows,
#: and whether it also holds its rows added up over the forms (under :data:`ALL_FORMS`).
_TABLES: Final[dict[str, tuple[str, Step, bool]]] = {
    "hourly": ("hour", "hour", False),
    "daily": ("day", "day", True),
}


def select_of(
    source: str,
    *,
    tables: Mapping[str, str],
    scans: Mapping[str, str],
    where: str,
    step: Step,
    per_form: bool,
    every_form: bool,
) -> tuple[str, str]:
    """The SELECT of one part of a histogram read, and the time column its ``{filters}`` compare.

    Args:
        source: ``hourly`` or ``daily`` (a table of ``tables``, read by :func:`rollup`), or a
            statement of ``scans`` (read by the hour, per form, as written).
        tables: each aggregate table's name in this store.
        scans: the store's statements that count events themselves.
        where: the conditions every aggregate row meets.
    """
    if source in scans:
        return scans[source], "hour"
    column, native, summed = _TABLES[source]
    select = rollup(
        tables[source], column, native, where, step, per_form, summed=summed, every_form=every_form
    )
    return select, column
