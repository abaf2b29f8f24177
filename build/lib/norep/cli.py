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
    ("bench", "analyses"): ("norep.commands.bench_analyses", "benchmark the all-pairs analyses"),
    ("bench", "extract"): ("norep.commands.bench_extract", "benchmark GPU extraction throughput"),
    ("store", "verify"): ("norep.commands.store_verify", "check a store's checksums and shapes"),
}

GROUP_HELP = {
    "zoo": "the embedded study and model registries",
    "notebooks": "the book's section notebooks",
    "bench": "speed benchmarks that print their figures",
    "store": "prediction store maintenance",
}


def build_parser() -> argparse.ArgumentParser:
    from norep import __version__

    parser = argparse.ArgumentParser(
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
    args = parser.parse_args(argv)
    module = getattr(args, "_module", None)
    if module is None:
        group_parser = getattr(args, "_group_parser", None)
        (group_parser or parser).print_help()
        return 2
    if getattr(args, "_missing", False):
        print(f"norep: this command is not available in this version ({module})", file=sys.stderr)
        return 2
    mod = importlib.import_module(module)
    try:
        return int(mod.run(args) or 0)
    except KeyboardInterrupt:
        print("norep: interrupted; finished work is kept and a rerun resumes", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
