"""``python -m collectors export``: the dashboard's CSV of unactivated hosts, filtered as the dashboard filters.

Its filter options are generated from ``models.filters.CRITERIA``, the vocabulary the dashboard's URL and
SQL come from; ``--filter`` takes a dashboard URL as pasted. Both are read by ``HostFilter.from_params``.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, BinaryIO
from urllib.parse import parse_qs, urlsplit

import typer
from rich.console import Console

from collectors.cli_base import EXIT_DATABASE, CliError, fail, settings_from
from knowledge import LANGUAGES, normalise_language
from models.filters import BY_KEY, CRITERIA, VIEW_KEYS, Criterion, HostFilter


def export(
    *,
    filter_query: str | None = None,
    output: Path | None = None,
    lang: str = "en",
    db: str | None = None,
    **criteria: Any,
) -> None:
    """Write the hosts matching the filter as the dashboard's CSV (always the unactivated ones)."""
    options = {c.key: _given(criteria.get(c.field)) for c in CRITERIA}
    try:
        language = normalise_language(lang, default="")
        if not language:
            raise CliError(f"--lang: not a language of the export: {lang!r} (use {', '.join(LANGUAGES)})")
        settings = settings_from(db_url=db)
        flt = filter_from_options(options, filter_query)
        rows = _write_export(settings.database_url, flt, output, language)
    except CliError as exc:
        raise fail(exc) from None
    Console(stderr=True).print(f"{rows} host(s) exported", highlight=False)


def _given(value: object) -> list[str]:
    """An export option's value in the URL form: repeated values, one value, or a flag."""
    if value is None or value is False:
        return []
    if value is True:
        return ["1"]
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


# Where the export reads a criterion differently from the Hosts page.
EXPORT_HELP = {
    "unactivated": "The default, kept for scripts that pass it: the export always lists the hosts that are not "
    "activated (Windows not Licensed, or the last poll could not reach them).",
}


def _criterion_option(c: Criterion) -> inspect.Parameter:
    """``export``'s option for one filter criterion, generated from the filter vocabulary."""
    c = dataclasses.replace(c, help=EXPORT_HELP.get(c.key, c.help))
    if c.kind == "values":
        annotation: Any = Annotated[list[str] | None, typer.Option(c.option, help=c.help)]
        return inspect.Parameter(c.field, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)
    if c.kind == "flag":
        annotation = Annotated[bool, typer.Option(c.option, help=c.help)]
        return inspect.Parameter(c.field, inspect.Parameter.KEYWORD_ONLY, default=False, annotation=annotation)
    annotation = Annotated[str | None, typer.Option(c.option, help=c.help)]
    return inspect.Parameter(c.field, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)


_EXPORT_OPTIONS = (
    ("filter_query", Annotated[str | None, typer.Option(
        "--filter", help="The dashboard's URL as pasted from the address bar, or just its query, e.g. "
        "'https://am.corp.example/hosts?code=0xC004F074&site=Taipei' or 'code=0xC004F074'.")], None),
    ("output", Annotated[Path | None, typer.Option(
        "--output", "-o", help="CSV file to write (default: stdout).")], None),
    ("lang", Annotated[str, typer.Option("--lang", help=(
        f"Language of the error titles: {' or '.join(LANGUAGES)}; columns and codes are the same in every "
        "language."))], "en"),
    ("db", Annotated[str | None, typer.Option("--db", help="Database URL (default: settings).")], None),
)  # fmt: skip
_export_parameters = [_criterion_option(c) for c in CRITERIA] + [
    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
    for name, annotation, default in _EXPORT_OPTIONS
]
export.__signature__ = inspect.Signature(_export_parameters)  # type: ignore[attr-defined]
export.__annotations__ = {p.name: p.annotation for p in _export_parameters} | {"return": None}


def filter_from_options(options: dict[str, list[str]], query: str | None = None) -> HostFilter:
    """The ``HostFilter`` of the export options and the dashboard URL query ``query``, merged.

    Both are read by ``HostFilter.from_params``, the parser the dashboard uses, so a filter means the
    same here and there; any key or value it does not accept is a ``CliError`` naming it.
    """
    params = {key: list(values) for key, values in options.items()}
    for key, values in _parse_query(query or "").items():
        params[key] = params.get(key, []) + values
    for c in CRITERIA:
        if c.kind != "values" and len(set(params.get(c.key, []))) > 1:
            raise CliError(f"{c.option}: given more than once with different values")
    flt, rejected = HostFilter.from_params(params)
    if rejected:
        key, _, value = rejected[0].partition("=")
        c = BY_KEY[key]
        raise CliError(f"{c.option}: {c.invalid}: {value!r}")
    return flt


def _parse_query(text: str) -> dict[str, list[str]]:
    query = _query_part(text.strip())
    try:
        parsed = parse_qs(query.lstrip("?"), keep_blank_values=True, strict_parsing=bool(query.strip("?")))
    except ValueError:
        raise CliError(f"--filter: not a dashboard URL or URL query: {text[:80]!r}") from None
    # A URL copied from the dashboard also says which language and page it showed; neither filters.
    for key in VIEW_KEYS:
        parsed.pop(key, None)
    unknown = sorted(set(parsed) - set(BY_KEY))
    if unknown:
        raise CliError(f"--filter: unknown key {unknown[0]!r} (use {', '.join(BY_KEY)})")
    return parsed


def _query_part(text: str) -> str:
    """The query of a pasted dashboard URL (``https://host/hosts?code=…#top``, ``/hosts?…``), or ``text`` itself."""
    if "://" in text or text.startswith("/") or ("?" in text and not text.startswith("?")):
        return urlsplit(text).query
    return text


def _write_export(url: str, flt: HostFilter, output: Path | None, lang: str = "en") -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from models import db as models_db
    from models.export import write_csv

    try:
        engine = models_db.open_database(url)
        with engine.connect() as conn, _open_output(output) as out:
            return write_csv(conn, flt, out, lang=lang)
    except SQLAlchemyError as exc:
        raise CliError(f"database unusable: {' '.join(str(exc).split())[:200]}", EXIT_DATABASE) from None
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror or exc}") from None


@contextmanager
def _open_output(output: Path | None) -> Iterator[BinaryIO]:
    if output is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    with output.open("wb") as handle:
        yield handle
