from .async_client import AsyncClient

__all__ = ["AsyncClient"]
