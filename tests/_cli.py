"""What the command-line tests share."""

from __future__ import annotations

from conceptid.cli import main


def one_error(args: list[str], capsys) -> str:
    """Run ``conceptid ARGS``: it must refuse with exit status 2 and one line on stderr that
    names the subcommand; returns that line."""
    rc = main(args)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith(f"conceptid {args[0]}: error: ") and len(err.strip().splitlines()) == 1
    return err
