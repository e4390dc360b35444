"""What every CLI command shares: the console, the platform of this invocation, errors."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

from openmdr.config import load_settings
from openmdr.runtime import Platform
from openmdr.store.errors import StoreError

console = Console()
err_console = Console(stderr=True)


class UserError(Exception):
    """A problem the user can fix (bad argument, unknown tenant, missing file): no traceback."""


F = TypeVar("F", bound=Callable[..., Any])


def user_errors(fn: F) -> F:
    """Turn the errors a user can act on into one red line and exit code 2 (no traceback).

    Covers :class:`UserError`, every store error (unknown tenant, name taken, invalid
    value, refused query) and missing files, so every command fails the same clear way.
    """
    from openmdr.pipeline import UnknownTenantError

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (UserError, StoreError, UnknownTenantError, FileNotFoundError, PermissionError) as exc:
            err_console.print(f"[red]error:[/] {exc}", markup=True, highlight=False)
            raise typer.Exit(2) from None

    return run  # type: ignore[return-value]


def platform(ctx: typer.Context) -> Platform:
    """The :class:`Platform` of this invocation, created from the global options on first use."""
    obj = ctx.ensure_object(dict)
    if "platform" not in obj:
        data_dir: Path | None = obj.get("data_dir")
        settings = load_settings(data_dir=data_dir, database_url=obj.get("database_url"))
        obj["platform"] = Platform(settings)
        ctx.call_on_close(obj["platform"].close)
    return obj["platform"]


def byte_progress() -> Progress:
    """A progress bar for reading input measured in bytes."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    )


def count_progress() -> Progress:
    """A progress bar for work measured in items."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=err_console,
    )
