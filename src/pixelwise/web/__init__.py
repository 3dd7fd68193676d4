"""The HTTP API and web page for background removal (``pixelwise serve``)."""

from pixelwise.web.app import create_app, serve

__all__ = ["create_app", "serve"]
