"""`mmsearch people`: the people found in an index's faces; name, merge and forget them. Thin commands over
`index/people.py`; domain errors become one-line messages through `reported_errors`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ..paths import INDEX_ENV, resolve_index_dir
from .ui import console, print_json, reported_errors

IndexOpt = Annotated[
    Path | None,  # noqa: UP007 - typer needs Optional on 3.10
    typer.Option(
        "--index", "-i", envvar=INDEX_ENV, help="Index directory. Default: $MMSEARCH_INDEX, else ./indexes/default."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
PersonArg = Annotated[str, typer.Argument(help="A person's id or name (see `mmsearch people`).")]

people_app = typer.Typer(
    help="The people found in the index's faces: list them, name, merge or forget one.",
    invoke_without_command=True,
    no_args_is_help=False,
)


def register(app: typer.Typer) -> None:
    app.add_typer(people_app, name="people")


@people_app.callback()
def list_command(ctx: typer.Context, index: IndexOpt = None, json_out: JsonOpt = False) -> None:
    """List people: id, name, face tracks, files, time on screen, when first seen."""
    if ctx.invoked_subcommand is not None:
        return
    from ..index.people_edit import list_people

    with reported_errors():
        people = list_people(resolve_index_dir(index))
    if json_out:
        print_json([p.to_json() for p in people])
        return
    if not people:
        console.print("no people: index with --faces (the `faces` extra) to find faces")
        return
    for p in people:
        name = escape(p.name) if p.name else "[dim]unnamed[/]"
        console.print(
            f"[bold]{p.id:>4}[/]  {name}  {p.tracks} track(s) in {p.files} file(s), {p.seconds:.1f}s on screen,"
            f" first seen {p.first_seen}"
        )


@people_app.command("name")
def name_command(person: PersonArg, name: str, index: IndexOpt = None, json_out: JsonOpt = False) -> None:
    """Give a person a name; text queries that mention it find the person's moments."""
    from ..index.people_edit import change_people

    with reported_errors():
        named = change_people(resolve_index_dir(index), lambda cat: cat.rename_person(person, name))
    _done(named.to_json(), f"person {named.id} is now {escape(named.label)}", json_out)


@people_app.command("merge")
def merge_command(
    person: PersonArg,
    other: Annotated[str, typer.Argument(help="The person whose faces move to PERSON (it goes away).")],
    index: IndexOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Merge OTHER into PERSON: one person seen as two."""
    from ..index.people_edit import change_people

    with reported_errors():
        merged = change_people(resolve_index_dir(index), lambda cat: cat.merge_people(person, other))
    _done(merged.to_json(), f"person {merged.id} ({escape(merged.label)}) now has {merged.tracks} track(s)", json_out)


@people_app.command("forget")
def forget_command(person: PersonArg, index: IndexOpt = None, json_out: JsonOpt = False) -> None:
    """Delete a person: their face tracks, descriptors, crops and name. Their files stay indexed."""
    from ..index.people_edit import change_people

    with reported_errors():
        gone = change_people(resolve_index_dir(index), lambda cat: cat.forget_person(person))
    data = {"id": gone.person_id, "tracks": len(gone.segment_ids), "files": len(gone.file_ids)}
    _done(data, f"forgot person {gone.person_id}: {len(gone.segment_ids)} face track(s) deleted", json_out)


def _done(data: Mapping[str, object], line: str, json_out: bool) -> None:
    if json_out:
        print_json(data)
    else:
        console.print(line)
