"""``python -m nbfetch.demo [--port N]``: run the demo server until Ctrl+C.

``python -m nbfetch.demo --tour`` starts it on a free port, fetches a chunked
response while printing every lifecycle event live, then the timing, and stops.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from .server import ENDPOINTS, serve


def _print_event(event) -> None:
    details = ", ".join(
        f"{k}={v}" for k, v in event.details.items() if k not in ("headers", "url", "from", "to")
    )
    print(f"  +{event.offset * 1000:8.3f} ms  {event.name:<22} {details}", flush=True)


async def tour(base: str) -> int:
    import nbfetch

    # demo.test is mapped to the demo server's address, like Tornado's
    # hostname_mapping: the resolver step shows up in the events.
    url = (
        base.replace("127.0.0.1", "demo.test")
        + "/chunked?sizes=10,2000,7&ext=1&trailers=1&delay=0.05"
    )
    print(f"GET {url}\n")
    async with nbfetch.AsyncClient(hostname_mapping={"demo.test": "127.0.0.1"}) as client:
        r = await client.fetch(url, trace=_print_event)
        print(f"\n{r.http_version} {r.status_code} {r.reason}")
        for name, value in r.headers.items():
            print(f"{name}: {value}")
        print(
            f"\nbody: {len(r.body)} bytes in {sum(e.name == 'response.chunk' for e in r.events)} wire chunks"
        )
        print(f"trailers: {dict(r.trailers.items())}")
        print(f"timing: {r.timing}")
        # The same origin again: the keep-alive connection is reused.
        again = await client.fetch(url.split("/chunked")[0] + "/get")
        reused = any(e.name == "connection.reused" for e in again.events)
        print(f"second fetch reused the connection: {reused}; timing: {again.timing}")
    return 0 if r.status_code == 200 and reused else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nbfetch.demo", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--tour", action="store_true", help="run one live fetch against it and stop"
    )
    args = parser.parse_args(argv)
    server = serve(args.port, args.host)
    try:
        if args.tour:
            return asyncio.run(tour(server.url))
        print(f"nbfetch demo server on {server.url}  (Ctrl+C to stop)")
        for path, what in ENDPOINTS.items():
            print(f"  {path:<45} {what}")
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
