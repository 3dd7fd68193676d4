"""The command line, ``pixelwise COMMAND``: :func:`main` (:mod:`pixelwise.cli.commands`)."""

from pixelwise.cli.commands import HANDLERS, build_parser, main, missing_extra, optional_parts

__all__ = ["HANDLERS", "build_parser", "main", "missing_extra", "optional_parts"]
