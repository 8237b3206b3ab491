"""The embedded demo server: ``nbfetch.demo.serve()`` or ``python -m nbfetch.demo``."""

from .server import ENDPOINTS, DemoServer, serve

__all__ = ["DemoServer", "ENDPOINTS", "serve"]
