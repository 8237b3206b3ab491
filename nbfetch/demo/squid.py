"""A local squid (Debian's ``squid`` package) for the tutorials and the tests:
a real proxy on 127.0.0.1, with its own config, log and PID file in a
temporary directory, and nothing else on the network (its DNS is loopback;
names it should know go in its own hosts file).

>>> missing = squid_missing()                                   # doctest: +SKIP
>>> with Squid(hosts=["demo.test"]) as proxy:                   # doctest: +SKIP
...     r = await nbfetch.fetch("http://demo.test:8000/get", proxy=proxy.url)
...     proxy.entries()      # [("GET", "http://demo.test:8000/get", "200", "-")]
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time

SQUID = shutil.which("squid") or next(
    (p for p in ("/usr/sbin/squid", "/usr/local/sbin/squid") if os.path.exists(p)), None
)
SQUID_NCSA = "/usr/lib/squid/basic_ncsa_auth"  # Debian's squid package puts it there


def squid_missing() -> str | None:
    """Why no local squid can run here, or None."""
    if SQUID is None or not os.path.exists(SQUID_NCSA):
        return "squid (Debian package 'squid', with basic_ncsa_auth) is not installed"
    return None


class Squid:
    """One squid on a free 127.0.0.1 port, with its own config, log and PID
    file in a temporary directory. ``user`` and ``password`` set: Basic auth
    (basic_ncsa_auth against an htpasswd file made here).

    Names in ``hosts`` resolve through squid's own hosts file, so an origin
    can have a name only squid knows (a test proves which path a fetch took)."""

    def __init__(self, user: str | None = None, password: str | None = None, hosts=()):
        if squid_missing():
            raise RuntimeError(squid_missing())
        self.user, self.password = user, password
        self.dir = tempfile.mkdtemp(prefix="nbfetch-squid-")
        self.log = os.path.join(self.dir, "access.log")
        self.port = _free_port()
        self.process: subprocess.Popen | None = None
        self._final: list | None = None  # the log as it was when stopped
        with open(os.path.join(self.dir, "hosts"), "w") as f:
            f.writelines(f"127.0.0.1 {name}\n" for name in hosts)
        access = "http_access allow loopback"
        auth = ""
        if user is not None:
            digest = subprocess.run(
                ["openssl", "passwd", "-apr1", password],
                check=True,
                capture_output=True,
                text=True,
                timeout=30,
            ).stdout.strip()
            with open(os.path.join(self.dir, "passwd"), "w") as f:
                f.write(f"{user}:{digest}\n")
            auth = (
                f"auth_param basic program {SQUID_NCSA} {self.dir}/passwd\n"
                "auth_param basic children 1 startup=1 idle=1\n"
                "auth_param basic realm nbfetch-test\n"
                "acl authed proxy_auth REQUIRED\n"
            )
            access = "http_access allow loopback authed"
        config = f"""
http_port 127.0.0.1:{self.port}
visible_hostname nbfetch-squid
pid_filename {self.dir}/squid.pid
cache_log {self.dir}/cache.log
logformat nbfetch %rm %ru %>Hs %un
access_log stdio:{self.log} nbfetch
buffered_logs off
strip_query_terms off
cache deny all
cache_mem 0 MB
shutdown_lifetime 0 seconds
hosts_file {self.dir}/hosts
dns_nameservers 127.0.0.1
pinger_enable off
coredump_dir {self.dir}
acl loopback src 127.0.0.0/8
{auth}{access}
http_access deny all
"""
        self.config = os.path.join(self.dir, "squid.conf")
        with open(self.config, "w") as f:
            f.write(config)
        if os.geteuid() == 0:
            # squid drops root for its cache_effective_user (Debian: proxy),
            # which must read the config and passwd and write the logs.
            import pwd

            ids = pwd.getpwnam("proxy")
            for name in [self.dir, *(os.path.join(self.dir, n) for n in os.listdir(self.dir))]:
                os.chown(name, ids.pw_uid, ids.pw_gid)

    @property
    def url(self) -> str:
        if self.user is None:
            return f"http://127.0.0.1:{self.port}"
        return f"http://{self.user}:{self.password}@127.0.0.1:{self.port}"

    def start(self) -> Squid:
        # -N: in the foreground, so the PID is squid's own and stops it.
        self.process = subprocess.Popen(
            [SQUID, "-N", "-f", self.config],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace")
                raise RuntimeError(f"squid exited ({self.process.returncode}): {err[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("squid did not listen within 30 s")

    def stop(self) -> None:
        """Stop squid by its PID; what it logged stays readable (``entries``)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: shutdown_lifetime 0, open tunnels logged
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process is not None:
            self.process.stderr.close()
        if self._final is None:
            self._final = self.entries()
        shutil.rmtree(self.dir, ignore_errors=True)

    def entries(self) -> list[tuple[str, str, str, str]]:
        """The access log so far: (method, URL, status, user) per request (not
        start()'s own readiness probe, which sent no request)."""
        if self._final is not None:
            return self._final
        try:
            with open(self.log) as f:
                rows = [tuple(line.split()[:4]) for line in f if line.strip()]
        except FileNotFoundError:
            return []
        return [row for row in rows if row[0] != "-"]

    def __enter__(self) -> Squid:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
