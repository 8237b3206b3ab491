"""Name resolution with a host override map, like Tornado's OverrideResolver.

``hostname_mapping`` maps a host to another host, or a (host, port) pair to
another (host, port) pair::

    AsyncClient(hostname_mapping={"api.example": "127.0.0.1",
                                  ("api.example", 443): ("127.0.0.1", 8443)})

The URL (and so the Host header, SNI and certificate check) keeps the original
name; only the address connected to changes.
"""

from __future__ import annotations

import ipaddress
import socket
from functools import lru_cache


@lru_cache(maxsize=256)
def ip_family(host: str) -> int | None:
    """AF_INET / AF_INET6 for an IP literal, None for a name."""
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return None
    return socket.AF_INET6 if addr.version == 6 else socket.AF_INET


class HostnameMapping:
    __slots__ = ("_pairs", "_hosts")

    def __init__(self, mapping: dict | None):
        self._pairs: dict[tuple[str, int], tuple[str, int]] = {}
        self._hosts: dict[str, str] = {}
        for key, value in (mapping or {}).items():
            if isinstance(key, tuple):
                if not (isinstance(value, tuple) and len(value) == 2):
                    raise ValueError(f"hostname_mapping[{key!r}] must be a (host, port) tuple")
                self._pairs[(key[0].lower(), int(key[1]))] = (value[0], int(value[1]))
            else:
                if not isinstance(value, str):
                    raise ValueError(f"hostname_mapping[{key!r}] must be a host name")
                self._hosts[key.lower()] = value

    def __bool__(self) -> bool:
        return bool(self._pairs or self._hosts)

    def apply(self, host: str, port: int) -> tuple[str, int]:
        """(host, port) to connect to; (host, port) pairs take precedence."""
        pair = self._pairs.get((host, port))
        if pair is not None:
            return pair
        return self._hosts.get(host, host), port
