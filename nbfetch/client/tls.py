"""TLS trust: the ``ssl.SSLContext`` that ``verify=``, ``cert=`` and the
environment ask for, and a certificate verification failure explained.

``verify`` is True (the system CAs plus certifi's), False (no check), a CA file,
a directory of CA certificates (OpenSSL's hashed names, as ``openssl rehash``
makes them), an ``ssl.SSLContext``, or ``"truststore"``: the operating system's
trust store through the optional ``truststore`` package (macOS Keychain, Windows
CryptoAPI; on Linux it is OpenSSL's default locations, and OpenSSL itself then
reads ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` whatever ``trust_env`` says). The string names the
package because that is what it needs installed and what pip and uv call the
same feature; a CA file of that exact name is still reachable as
``"./truststore"``.

With ``trust_env=True`` and ``verify=True``, ``SSL_CERT_FILE`` and
``SSL_CERT_DIR`` replace the default CAs, as OpenSSL, curl and httpx read them:
a company bundle then is the whole trust. They are read once, when the client
is made, so a client's trust does not change under it when a cell edits
``os.environ``; an explicit ``verify=`` wins over them. With ``trust_env=False``
nbfetch reads neither variable, and neither does OpenSSL for ``verify=True``
(the default locations are named, see ``_system_context``) or a CA path; only
``verify="truststore"`` on Linux lets OpenSSL read them.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..core.errors import InvalidRequest, TLSError
from ..drivers.base import Driver, IOTimeout

if TYPE_CHECKING:
    import ssl

TRUSTSTORE = "truststore"

#: OpenSSL's X509_V_ERR codes that mean "no trusted CA signed this": the cases
#: where pointing nbfetch at a company CA is the fix.
#: How OpenSSL names a CA (or, with "r", a CRL) in a directory: X509_LOOKUP_hash_dir.
_HASHED = re.compile(r"[0-9a-f]{8}\.r?[0-9]+")
_CERT_FILE = re.compile(r"\.(pem|crt|cer)$", re.IGNORECASE)

_UNTRUSTED_ISSUER = {
    2: "unable to get issuer certificate",
    18: "self-signed certificate",
    19: "self-signed certificate in certificate chain",
    20: "unable to get local issuer certificate",
    21: "unable to verify the first certificate",
}
_HOSTNAME_MISMATCH = 62

#: How long the second, unverified handshake that reads the issuer's name may take.
PROBE_TIMEOUT = 3.0


@dataclass(frozen=True)
class Trust:
    """What a client trusts, fixed when it is made."""

    verify: object
    cert: str | tuple[str, str] | None = None
    env_file: str | None = None  # SSL_CERT_FILE, when trust_env and verify=True
    env_dir: str | None = None  # SSL_CERT_DIR, likewise

    @classmethod
    def of(cls, verify, cert, trust_env: bool, environ=os.environ) -> Trust:
        import ssl

        if isinstance(verify, os.PathLike):
            verify = os.fspath(verify)
        if not isinstance(verify, (bool, str, ssl.SSLContext)):
            raise InvalidRequest(
                "verify= takes True, False, a CA file or directory, an ssl.SSLContext "
                f"or {TRUSTSTORE!r}, not {type(verify).__name__}"
            )
        if verify == "":
            # ssl.create_default_context(cafile="") would load the default CAs
            # and read SSL_CERT_FILE/SSL_CERT_DIR (verify=os.environ.get("X", "")).
            raise InvalidRequest(
                "verify='' names no CA file or directory: pass True for the default CAs,"
                " False for no check, or the path of a CA file"
            )
        if verify == TRUSTSTORE:
            try:
                import truststore  # noqa: F401
            except ImportError:
                raise InvalidRequest(
                    "verify='truststore' needs the truststore package: "
                    "pip install 'nbfetch[truststore]'"
                ) from None
        if trust_env and verify is True:
            # An empty value counts as unset.
            env_file = environ.get("SSL_CERT_FILE") or None
            env_dir = environ.get("SSL_CERT_DIR") or None
            return cls(verify, cert, env_file, env_dir)
        return cls(verify, cert)

    def describe(self) -> str:
        """What was trusted, in words, for an error message."""
        import ssl

        verify = self.verify
        if self.env_file or self.env_dir:
            found = {"SSL_CERT_FILE": self.env_file, "SSL_CERT_DIR": self.env_dir}
            named = " and ".join(f"{n}={v!r}" for n, v in found.items() if v)
            return named + " (from the environment)"
        if verify is True:
            return "the system CAs and certifi's"
        if verify == TRUSTSTORE:
            return "the operating system's trust store (truststore)"
        if isinstance(verify, ssl.SSLContext):
            return "the CAs of the ssl.SSLContext given as verify="
        return f"verify={verify!r}"


def new_ssl_context(trust: Trust) -> ssl.SSLContext:
    """A TLS context as ``trust`` asks. Blocking: loading the system CAs and
    certifi's takes ~75 ms of CPU, so fetches call it in a worker thread."""
    import ssl  # only https fetches pay for it

    verify = trust.verify
    if isinstance(verify, ssl.SSLContext):
        return verify
    try:
        if verify == TRUSTSTORE:
            import truststore

            ctx = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        elif trust.env_file or trust.env_dir:
            ctx = ssl.create_default_context(cafile=trust.env_file, capath=trust.env_dir)
        elif isinstance(verify, str):
            is_dir = os.path.isdir(verify)
            ctx = ssl.create_default_context(
                cafile=None if is_dir else verify, capath=verify if is_dir else None
            )
        elif verify is False:  # no CAs to load: nothing is checked
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        else:
            ctx = _system_context()
        ctx.set_alpn_protocols(["http/1.1"])
        if trust.cert is not None:
            if isinstance(trust.cert, tuple):
                ctx.load_cert_chain(*trust.cert)
            else:
                ctx.load_cert_chain(trust.cert)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
        raise TLSError(f"cannot load the certificates of {trust.describe()}: {reason}") from None
    return ctx


def _system_context() -> ssl.SSLContext:
    """The system CAs at OpenSSL's compiled-in locations plus certifi's. The
    locations are named, not taken from ``set_default_verify_paths()``: that reads
    SSL_CERT_FILE/SSL_CERT_DIR itself, which ``trust_env=False`` must not."""
    import ssl

    paths = ssl.get_default_verify_paths()
    cafile = paths.openssl_cafile if os.path.isfile(paths.openssl_cafile) else None
    capath = paths.openssl_capath if os.path.isdir(paths.openssl_capath) else None
    try:
        import certifi

        bundle = certifi.where()
    except ImportError:
        bundle = None
    if cafile is None and capath is None:
        cafile, bundle = bundle, None
    if cafile is None and capath is None:  # no system CAs, no certifi: trusts nothing
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    else:
        ctx = ssl.create_default_context(cafile=cafile, capath=capath)
    if bundle is not None:
        ctx.load_verify_locations(bundle)
    return ctx


#: The contexts of ``verify=True`` without a client certificate, one per
#: (SSL_CERT_FILE, SSL_CERT_DIR) seen, built once per process: every client with
#: the defaults shares one (aiohttp does the same).
_shared: dict[tuple, ssl.SSLContext] = {}
# Clients on several loops (threads: Dask workers, kernels) may build it at once.
_shared_lock = threading.Lock()


def ssl_context_for(trust: Trust) -> ssl.SSLContext:
    """``new_ssl_context(trust)``, shared by every client with the default trust."""
    if trust.verify is not True or trust.cert is not None:
        return new_ssl_context(trust)
    key = (trust.env_file, trust.env_dir)
    with _shared_lock:
        if key not in _shared:
            _shared[key] = new_ssl_context(trust)
        return _shared[key]


# -- explaining a verification failure -----------------------------------------


def unhashed_ca_dir(trust: Trust) -> str | None:
    """The CA directory trusted, when it holds certificates but none under the
    names OpenSSL looks CAs up by (``<subject hash>.0``, as ``openssl rehash``
    makes them): OpenSSL then finds none of them. Blocking (a directory listing)."""
    folder = trust.env_dir
    if folder is None and isinstance(trust.verify, str) and os.path.isdir(trust.verify):
        folder = trust.verify
    if folder is None:
        return None
    try:
        names = os.listdir(folder)
    except OSError:
        return None
    if any(_HASHED.fullmatch(n) for n in names) or not any(_CERT_FILE.search(n) for n in names):
        return None
    return folder


def explain(
    exc: BaseException, host: str, trust: Trust, issuer: str | None, unhashed: str | None = None
) -> str:
    """The message of a failed handshake: what failed for which name, who issued
    the certificate (when known), what was trusted, and how to trust a company CA."""
    code = getattr(exc, "verify_code", None)
    reason = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or str(exc)
    if code is None:
        return f"TLS handshake with {host!r} failed: {reason}"
    text = f"certificate verify failed for {host!r}: {reason} (X509 error {code})"
    if code == _HOSTNAME_MISMATCH:
        return text + "; the certificate was made for another name"
    if code in _UNTRUSTED_ISSUER:
        who = f"the certificate was issued by {issuer}, which is" if issuer else "its issuer is"
        text += (
            f"; {who} not among the trusted CAs ({trust.describe()}). If a company "
            "proxy or CA signs this site, point nbfetch at its CA certificate: "
            "AsyncClient(verify='company-ca.pem'), or SSL_CERT_FILE=company-ca.pem "
            "in the environment (read with trust_env=True)"
        )
        if unhashed is not None:
            text += (
                f"; {unhashed!r} has certificate files but none named by subject hash"
                f" (such as 1a2b3c4d.0), the only names OpenSSL looks CAs up by in a"
                f" directory: run `openssl rehash {unhashed}`, or pass the CA file itself"
            )
    return text


async def explain_failure(
    exc: BaseException,
    host: str,
    trust: Trust,
    driver: Driver,
    address: tuple | None,
    server_hostname: str | None,
    timeout: float | None,
) -> str:
    """``explain()``, with the issuer read by ``probe_issuer`` when no trusted CA
    signed the certificate. ``address``: the server's, reached directly; None for a
    connection through a proxy, where a direct probe would not reach what the
    fetch reached. ``timeout``: what is left of the connect budget."""
    issuer = unhashed = None
    wait = PROBE_TIMEOUT if timeout is None else min(timeout, PROBE_TIMEOUT)
    untrusted = getattr(exc, "verify_code", None) in _UNTRUSTED_ISSUER and wait > 0
    if address and untrusted:
        try:
            issuer = await driver.run_sync(
                lambda: probe_issuer(address, server_hostname, wait), wait
            )
        except IOTimeout:
            pass
    if untrusted:
        try:
            unhashed = await driver.run_sync(lambda: unhashed_ca_dir(trust), wait)
        except IOTimeout:
            pass
    return explain(exc, host, trust, issuer, unhashed)


def probe_issuer(address: tuple, server_hostname: str | None, timeout: float) -> str | None:
    """The issuer of the certificate that ``address`` shows for ``server_hostname``,
    read from a second handshake that checks nothing; blocking (call it in a worker
    thread, whose wait the caller bounds). Safe and bounded: the address the failed
    handshake just reached, nothing sent but the ClientHello, ``timeout`` for each
    socket operation, the certificate list as large as OpenSSL accepts (100 KiB),
    and only the escaped issuer name kept. None when it cannot be had."""
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection(address[:2], timeout=timeout) as sock,
            ctx.wrap_socket(sock, server_hostname=server_hostname) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except (OSError, ValueError):
        return None
    return issuer_name(der) if der else None


# -- the issuer's name from a DER certificate (RFC 5280 §4.1) ----------------------

_NAME_OIDS = {
    bytes.fromhex("550403"): "CN",  # 2.5.4.3 commonName
    bytes.fromhex("55040a"): "O",  # 2.5.4.10 organizationName
    bytes.fromhex("55040b"): "OU",  # 2.5.4.11 organizationalUnitName
}
_STRING_TAGS = {0x0C: "utf-8", 0x13: "ascii", 0x16: "ascii", 0x14: "latin-1", 0x1E: "utf-16-be"}
_MAX_NAME = 200  # characters of the issuer kept for a message


def _tlv(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, start of value, end of value) of the DER element at ``pos``; ValueError
    when it runs past ``end`` (the bytes are the server's: nothing is trusted)."""
    if pos + 2 > end:
        raise ValueError("truncated")
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if not 1 <= count <= 4 or pos + count > end:
            raise ValueError("bad length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > end:
        raise ValueError("truncated")
    return tag, pos, pos + length


def _children(data: bytes, start: int, end: int):
    while start < end:
        tag, value, start = _tlv(data, start, end)
        yield tag, value, start


def issuer_name(der: bytes) -> str | None:
    """``CN=..., O=...`` of the certificate's issuer, quoted and cut to a bounded
    length; None when the bytes are not a certificate this reader understands."""
    try:
        _, cert, cert_end = _tlv(der, 0, len(der))
        _, tbs, tbs_end = _tlv(der, cert, cert_end)
        fields = list(_children(der, tbs, tbs_end))
        if fields and fields[0][0] == 0xA0:  # [0] version
            fields = fields[1:]
        _, name, name_end = fields[2]  # serialNumber, signature, issuer
        parts = []
        for _, rdn, rdn_end in _children(der, name, name_end):
            for _, atv, atv_end in _children(der, rdn, rdn_end):
                (_, oid, oid_end), (tag, val, val_end) = list(_children(der, atv, atv_end))[:2]
                label = _NAME_OIDS.get(der[oid:oid_end])
                if label and tag in _STRING_TAGS:
                    text = der[val:val_end].decode(_STRING_TAGS[tag], "replace")
                    parts.append(f"{label}={text}")
    except (ValueError, IndexError):
        return None
    if not parts:
        return None
    # In the certificate's order, as ``openssl x509 -issuer`` prints it; repr()
    # escapes control characters: the name is the server's text.
    return repr(", ".join(parts)[:_MAX_NAME])
