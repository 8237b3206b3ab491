from .async_client import AsyncClient, Limits

__all__ = ["AsyncClient", "Limits"]
