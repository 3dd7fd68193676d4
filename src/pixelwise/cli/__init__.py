"""The command line, ``pixelwise COMMAND``: :func:`main` (:mod:`pixelwise.cli.main`)."""

from pixelwise.cli.main import HANDLERS, build_parser, main, missing_extra, optional_parts

__all__ = ["HANDLERS", "build_parser", "main", "missing_extra", "optional_parts"]
