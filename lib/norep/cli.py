"""The ``norep`` command line: one entry point, subcommands implemented in ``norep.commands``.

Each command module defines ``HELP`` (one line), ``configure(parser)`` and ``run(args) -> int``,
and imports heavy libraries (torch, sklearn) inside ``run`` so that ``norep --help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# (group, command) -> (module, one-line help shown by ``norep --help``)
COMMANDS: dict[tuple[str, ...], tuple[str, str]] = {
    ("zoo", "train"): ("norep.commands.zoo_train", "train the embedded model zoo into a store"),
    ("zoo", "report"): ("norep.commands.zoo_report", "print the per-category report of a store"),
    ("zoo", "list"): ("norep.commands.zoo_list", "list the models of a store, or the paper's registry"),
    ("notebooks", "run"): ("norep.commands.notebooks_run", "execute the section notebooks with papermill"),
    ("extract",): ("norep.commands.extract", "extract logits and embeddings of a timm/open_clip/hf model"),
    ("import",): ("norep.commands.import_arrays", "import your own logits/embeddings into a store"),
    ("claims",): ("norep.commands.claims", "the verdict on each of the paper's claims, for one store or several"),
    ("bench", "analyses"): ("norep.commands.bench_analyses", "benchmark the all-pairs analyses"),
    ("bench", "extract"): ("norep.commands.bench_extract", "benchmark GPU extraction throughput"),
    ("store", "verify"): ("norep.commands.store_verify", "check a store's manifest, metadata and checksums"),
    ("store", "clean"): ("norep.commands.store_clean", "remove leftovers of interrupted or superseded writes"),
    ("store", "info"): ("norep.commands.store_info", "show splits, models, base, band and what each chapter can run"),
    ("store", "set"): ("norep.commands.store_set", "set a store's base model and accuracy band"),
}

GROUP_HELP = {
    "zoo": "the embedded study and model registries",
    "notebooks": "the book's section notebooks",
    "bench": "speed benchmarks that print their figures",
    "store": "prediction store maintenance",
}


class _UsageError(Exception):
    """A command line that does not parse; :func:`main` prints it as one line and returns 1."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one ``norep: ...`` line (exit 1), naming ``--help``."""

    def error(self, message: str):  # type: ignore[override]
        where = self.prog.partition(" ")[2]
        raise _UsageError(f"{where + ': ' if where else ''}{message}; `{self.prog} --help` lists the options")


def build_parser() -> argparse.ArgumentParser:
    from norep import __version__

    parser = _Parser(
        prog="norep",
        description=(
            "Companion to 'No One Representation to Rule Them All' (Gontijo-Lopes, Dauphin, "
            "Cubuk, ICLR 2022): build prediction stores, analyse them, run the book's notebooks."
        ),
    )
    parser.add_argument("--version", action="version", version=f"norep {__version__}")
    top = parser.add_subparsers(dest="command", metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {}
    for key, (module, help_) in COMMANDS.items():
        if len(key) == 1:
            sub = top.add_parser(key[0], help=help_, description=help_)
        else:
            group, name = key
            if group not in groups:
                gp = top.add_parser(group, help=GROUP_HELP[group], description=GROUP_HELP[group])
                groups[group] = gp.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
                gp.set_defaults(_group_parser=gp)
            sub = groups[group].add_parser(name, help=help_, description=help_)
        sub.set_defaults(_module=module)
        sub.set_defaults(_configure_pending=True)
        _configure(sub, module)
    return parser


def _configure(sub: argparse.ArgumentParser, module: str) -> None:
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:  # command not implemented in this checkout
        if exc.name != module:
            raise
        sub.set_defaults(_missing=True)
        return
    sub.formatter_class = argparse.RawDescriptionHelpFormatter
    if getattr(mod, "DESCRIPTION", None):
        sub.description = mod.DESCRIPTION
    mod.configure(sub)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except BrokenPipeError:
        return _broken_pipe()
    except _UsageError as exc:
        return _one_line_error(exc)
    module = getattr(args, "_module", None)
    if module is None:
        group_parser = getattr(args, "_group_parser", None)
        (group_parser or parser).print_help()
        return 2
    if getattr(args, "_missing", False):
        print(f"norep: this command is not available in this version ({module})", file=sys.stderr)
        return 2
    try:
        mod = importlib.import_module(module)
        return int(mod.run(args) or 0)
    except KeyboardInterrupt:
        print("norep: interrupted; finished work is kept and a rerun resumes", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _broken_pipe()
    except ModuleNotFoundError as exc:
        return _missing_extra(exc)
    except (ValueError, OSError, MemoryError) as exc:
        return _one_line_error(exc)
    except Exception as exc:  # noqa: BLE001 - a user sees one line; NOREP_DEBUG=1 shows the traceback
        return _one_line_error(exc, internal=True)


def _one_line_error(exc: BaseException, internal: bool = False) -> int:
    """Print ``norep: <cause>`` on one line (the traceback only with ``NOREP_DEBUG=1``); return 1."""
    import os
    import traceback

    if os.environ.get("NOREP_DEBUG"):
        traceback.print_exc()
    if isinstance(exc, OSError) and exc.filename is not None:
        from norep.storage._io import os_reason

        text = f"{exc.filename}: {os_reason(exc)}"
    elif isinstance(exc, MemoryError):
        text = "out of memory" + (f" ({exc})" if str(exc) else "")
    else:
        text = str(exc) or type(exc).__name__
    if internal:
        text = f"unexpected {type(exc).__name__}: {text} (NOREP_DEBUG=1 shows where)"
    try:
        print("norep: " + " ".join(text.split()), file=sys.stderr)
    except (BrokenPipeError, OSError):
        pass
    return 1


EXTRAS = {
    "papermill": "book",
    "jupytext": "book",
    "jupyter_book": "book",
    "nbformat": "book",
    "nbclient": "book",
    "ipykernel": "book",
    "sphinxcontrib": "book",
    "PIL": "zoo",
    "torchvision": "extract",
    "timm": "extract",
    "open_clip": "extract",
    "transformers": "hf",
    "pytest": "dev",
    "selenium": "dev",
}
"""Top-level module -> the optional extra of the package that installs it."""


def _missing_extra(exc: ModuleNotFoundError) -> int:
    """One line naming the extra to install when a command needs a package the install lacks."""
    top = (exc.name or "").split(".")[0]
    extra = EXTRAS.get(top)
    if extra is None:
        return _one_line_error(exc, internal=not top.startswith("norep"))
    print(
        f"norep: this command needs {top!r}, which the '{extra}' extra installs: "
        f"pip install 'norep[{extra}]' (or, in a checkout, pip install -e '.[{extra}]')",
        file=sys.stderr,
    )
    return 1


def _broken_pipe() -> int:
    """The reader of our output went away (``norep zoo list | head``): stop quietly, like SIGPIPE."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 141


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
