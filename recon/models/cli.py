"""``recon models``: list the named models and checkpoints, and download one explicitly.

    recon models list
    recon models fetch NAME [--url URL] [--force]

``fetch`` is the only place recon downloads anything; see :mod:`recon.models.registry` for the sources, the
destinations (torch hub cache, Hugging Face cache) and the checksums.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Annotated

import tyro

from recon.errors import ReconError
from recon.models.registry import MODELS, ModelEntry, file_destination


@dataclass
class FetchArgs:
    """Download a named model or checkpoint into the standard cache (see `recon models list`)."""

    name: Annotated[str, tyro.conf.Positional]
    """A name from `recon models list`."""
    url: str | None = None
    """Download the file from this URL instead (a mirror); file entries only."""
    force: bool = False
    """Download again even when the file is already there."""
    progress: bool = True
    """Show a progress bar."""


def status(entry: ModelEntry) -> str:
    if entry.repo_id is not None:
        from recon.priors.mono import hf_cached

        p = hf_cached(entry.repo_id)
        return f"present ({p})" if p is not None else "missing"
    p = file_destination(entry)
    return f"present ({p})" if p.is_file() else "missing"


def list_models() -> str:
    lines = [f"{'name':<40} {'kind':<5} {'licence':<40} status", "-" * 100]
    for e in MODELS.values():
        lines.append(f"{e.name:<40} {e.kind:<5} {e.licence:<40} {status(e)}")
        lines.append(f"    {e.description}; source: {e.repo_id or e.urls[0]}")
    lines.append("download one with: recon models fetch NAME (nothing is ever downloaded otherwise)")
    return "\n".join(lines)


def main(argv: list[str], prog: str = "recon models") -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: {prog} {{list,fetch}} [--help] ...\n\n  list     the named models, their licences and whether "
              "they are on disk\n  fetch    download one explicitly (progress bar, checksum where published)")
        return 0
    sub, rest = argv[0], argv[1:]
    if sub == "list":
        tyro.cli(_NoArgs, args=rest, prog=f"{prog} list")
        print(list_models())
        return 0
    if sub != "fetch":
        print(f"error: unknown `{prog}` subcommand {sub!r} (choose from list, fetch)", file=sys.stderr)
        return 2
    args = tyro.cli(FetchArgs, args=rest, prog=f"{prog} fetch")
    entry = MODELS.get(args.name)
    if entry is None:
        raise ReconError(f"unknown model {args.name!r} (choose from {', '.join(MODELS)})")
    if args.url is not None and entry.repo_id is not None:
        raise ReconError(f"--url: {entry.name} is a Hugging Face repository, not a single file")
    from recon.models.fetch import fetch

    print(fetch(entry, url=args.url, force=args.force, progress=args.progress))
    return 0


@dataclass
class _NoArgs:
    """List the named models and checkpoints, their licences and whether they are on disk."""
