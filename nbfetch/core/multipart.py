"""multipart/form-data bodies (RFC 7578) for ``files=``, as pure data plus
the blocking file reads that the client layer runs in a worker thread.

>>> body = MultipartBody.build({"a": "1"}, {"f": ("x.txt", b"hi")}, boundary="B")
>>> b"".join(s for s in body.segments())
b'--B\\r\\nContent-Disposition: form-data; name="a"\\r\\n\\r\\n1\\r\\n--B\\r\\nContent-Disposition: form-data; name="f"; filename="x.txt"\\r\\nContent-Type: text/plain\\r\\n\\r\\nhi\\r\\n--B--\\r\\n'

A part's content is bytes (in memory) or a ``FileSource``: a path (opened when
its part is sent, closed when the part is done) or a file object (read from its
position then; never closed by nbfetch). ``MultipartBody.measure()``, in a
worker thread before the head, measures every file (``stat`` for a path,
``fstat`` for a plain open file, seeking to the end for other seekable ones):
when all sizes are known the body is sent with Content-Length, else chunked.
A file that then grows or shrinks while it is read fails the upload before the
rest of the body is sent: the server never receives a complete, wrong body.
"""

from __future__ import annotations

import io
import mimetypes
import os
import re
import stat
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from .errors import FetchError, InvalidRequest

#: File objects whose fstat size is what read() gives: a plain file, raw or
#: buffered (a GzipFile's fileno() is its compressed file's).
_PLAIN = (io.FileIO, io.BufferedReader, io.BufferedRandom)

#: One blocking read of a file (one worker-thread call): the memory an upload
#: holds per file at a time.
READ_BYTES = 64 * 1024
#: In-memory contents are handed out in slices of at most this, as the client
#: writes large bodies.
SLICE_BYTES = 1024 * 1024

# Names and filenames as browsers and httpx write them (WHATWG HTML "multipart/
# form-data encoding algorithm"; httpx _multipart.py): '"' as %22, C0 controls
# (CR and LF above all: they would end the header line) percent-encoded except
# ESC, and the backslash doubled, since RFC 7578 section 4.2's parameter is a
# quoted-string. Non-ASCII stays raw UTF-8: section 4.2 forbids RFC 5987's filename*.
_ESCAPES = {'"': "%22", "\\": "\\\\"}
_ESCAPES.update({chr(c): f"%{c:02X}" for c in range(0x20) if c != 0x1B})
_ESCAPE = re.compile("|".join(re.escape(c) for c in _ESCAPES))


def form_param(name: str, value: str) -> bytes:
    """``name="value"`` for a Content-Disposition header, escaped."""
    try:
        return f'{name}="{_ESCAPE.sub(lambda m: _ESCAPES[m.group(0)], value)}"'.encode()
    except UnicodeEncodeError:
        # A file name os.listdir() decoded with surrogate escapes (bytes that
        # are not UTF-8). httpx and requests fail here too; sending the raw
        # bytes would give the server a name it cannot decode as UTF-8.
        raise InvalidRequest(
            f"the {name} {value!r} is not valid UTF-8 text (a file name in another"
            " encoding?): name the file yourself, files={field: (filename, pathlib.Path(path))}"
        ) from None


# A media type (RFC 6838 section 4.2) and its parameters (RFC 9110 section
# 5.6.6) are printable ASCII words: no CR or LF, which would end the part's
# header line and let the value write headers or parts of its own.
_MEDIA_TYPE = re.compile(r"[\x21-\x7e]+(?:[ \t]+[\x21-\x7e]+)*")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 section 5.6.2


def _media_type(value: Any, field: str) -> bytes:
    if not isinstance(value, str) or not _MEDIA_TYPE.fullmatch(value):
        raise InvalidRequest(
            f"files={field!r}: the content type {repr(value)[:80]} is not a media type"
            " (printable ASCII text such as 'text/csv; charset=utf-8')"
        )
    return value.encode("ascii")


def _label(source: object) -> str:
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else repr(source)


class FileSource:
    """One file of an upload: measured before the head, opened (a path) when
    its part is sent, read in a worker thread, closed when its part is done."""

    __slots__ = (
        "path",
        "file",
        "owned",
        "start",
        "size",
        "remaining",
        "sent",
        "finished",
        "_lock",
        "_reading",
        "_closed",
    )

    def __init__(self, path: str | os.PathLike | None = None, file: Any = None):
        self.path = path
        self.file = file
        self.owned = False  # opened by nbfetch: closed by it
        self.start: int | None = None  # where a caller's file object was when first sent
        self.size: int | None = None
        self.remaining: int | None = None
        self.sent = 0
        self.finished = False  # this attempt's part is all read
        # A read runs in a worker thread and may outlive its timeout (a hung
        # network file system). close() on the loop must not close the file under
        # it: BufferedReader.close() waits for the lock the read holds, which
        # would block the loop. The read's thread closes it when it returns.
        self._lock = threading.Lock()
        self._reading = False
        self._closed = False

    @property
    def replayable(self) -> bool:
        """A path is opened again; a file object only if it can seek back."""
        if self.path is not None:
            return True
        seekable = getattr(self.file, "seekable", None)
        try:
            return bool(seekable and seekable())
        except (OSError, ValueError):
            return False

    def measure(self) -> int | None:
        """Blocking (a worker thread): get ready for an attempt and return the
        size to send, or None when it cannot be known. A path is only stat'ed
        (opened when its part is sent: an upload of many files holds one open);
        a file object sent before is rewound (a retry or a 307/308)."""
        with self._lock:
            if self._reading:
                # An earlier attempt's read has not returned (it timed out): the
                # file's position and this source's counts are still its own.
                raise FetchError(
                    f"upload file {self._name()!r}: a read from an earlier attempt"
                    " has not returned",
                    phase="send",
                )
            self._closed, self.finished = False, False
        if self.path is not None:
            label = _label(self.path)
            try:
                st = os.stat(self.path)
            except OSError as exc:
                raise InvalidRequest(
                    f"cannot read upload file {label!r}: {exc.strerror or exc}"
                ) from None
            # A FIFO would block open() itself until a writer came (and
            # closing it, a read waiting for one): regular files only.
            if not stat.S_ISREG(st.st_mode):
                raise InvalidRequest(
                    f"upload file {label!r} is not a regular file: pass it open ('rb') to stream it"
                )
            self.start = 0
            size: int | None = st.st_size
        elif self.replayable:
            if self.start is None:
                self.start = self.file.tell()
            else:
                self.file.seek(self.start)
            size = self._measure_object()
        else:
            size = None  # a pipe, a socket, a generator-like reader: chunked
        self.size = self.remaining = size
        self.sent = 0
        return size

    def _measure_object(self) -> int | None:
        raw = getattr(self.file, "raw", self.file)
        if isinstance(self.file, _PLAIN) and isinstance(raw, io.FileIO):
            try:
                st = os.fstat(self.file.fileno())
            except (OSError, ValueError):
                return None
            return max(st.st_size - self.start, 0) if stat.S_ISREG(st.st_mode) else None
        # Anything else seekable (BytesIO, a zip member, a GzipFile) by seeking
        # to its end: this can read (decompress) all of it, hence the worker thread.
        try:
            end = self.file.seek(0, os.SEEK_END)
        except (OSError, ValueError, io.UnsupportedOperation):
            return None
        self.file.seek(self.start)
        return end - self.start

    def read(self) -> bytes:
        """Blocking (a worker thread): the next at most READ_BYTES; ``finished``
        is set with the last of them (the file nbfetch opened is closed then).
        With a known size, a file that ends early or has bytes past it fails
        here, before the body's next delimiter is sent (RFC 2046 section 5.1.1)."""
        with self._lock:
            if self._closed:  # closed (a timeout, a cancel) before this thread ran
                raise FetchError("upload stopped", phase="send")
            self._reading = True
        try:
            return self._read()
        finally:
            with self._lock:
                self._reading = False
                late = self._closed
            if late or self.finished:
                self._close_file()

    def _read(self) -> bytes:
        if self.finished:
            return b""
        if self.file is None:
            try:
                self.file = open(self.path, "rb")  # noqa: SIM115 - closed by _close_file()
            except OSError as exc:
                raise InvalidRequest(
                    f"cannot read upload file {self._name()!r}: {exc.strerror or exc}"
                ) from None
            self.owned = True
        want = READ_BYTES if self.remaining is None else min(READ_BYTES, self.remaining)
        data = self.file.read(want) if want else b""
        if not isinstance(data, bytes):
            raise InvalidRequest(
                f"upload file {self._name()!r} gave {type(data).__name__}, not bytes:"
                " open it in binary mode ('rb')"
            )
        self.sent += len(data)
        if self.remaining is None:
            self.finished = not data
            return data
        if want and not data:
            raise self._changed(f"it ended after {self.sent:,} bytes")
        self.remaining -= len(data)
        if self.remaining == 0:
            # An empty file too: one byte past the measured size means it grew.
            if self.file.read(1):
                raise self._changed("it has more bytes now")
            self.finished = True
        return data

    def _name(self) -> str:
        return (
            _label(self.path)
            if self.path is not None
            else _label(getattr(self.file, "name", self.file))
        )

    def _changed(self, what: str) -> FetchError:
        return FetchError(
            f"upload file {self._name()!r} changed size while it was sent: it had"
            f" {self.size:,} bytes when the upload started, {what}; the upload was"
            " stopped before the body was complete",
            phase="send",
        )

    def close(self) -> None:
        """On the loop: close the file nbfetch opened, unless a read is running
        (then its thread closes it when the read returns; never waited for)."""
        with self._lock:
            self._closed = True
            if self._reading:
                return
        self._close_file()

    def _close_file(self) -> None:
        if self.owned and self.file is not None:
            file, self.file, self.owned = self.file, None, False
            file.close()


def _content_type(filename: str | None) -> str:
    guessed = mimetypes.guess_type(filename)[0] if filename else None
    return guessed or "application/octet-stream"


def _as_bytes(value: Any, what: str) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value).encode("ascii")
    raise InvalidRequest(f"{what} takes str, bytes, int or float, not {type(value).__name__}")


def _pairs(source: Any, what: str) -> list[tuple[str, Any]]:
    """(name, value) pairs of a dict (a list value repeats the name) or a list of pairs."""
    if source is None:
        return []
    if isinstance(source, Mapping):
        items = []
        for name, value in source.items():
            values = value if isinstance(value, (list, tuple)) and what == "data=" else [value]
            items.extend((name, v) for v in values)
    elif isinstance(source, (list, tuple)):
        items = list(source)
        if not all(isinstance(p, tuple) and len(p) == 2 for p in items):
            raise InvalidRequest(f"{what} takes a dict or a list of (name, value) pairs")
    else:
        raise InvalidRequest(f"{what} takes a dict or a list of (name, value) pairs")
    for name, _ in items:
        if not isinstance(name, str):
            raise InvalidRequest(f"{what} field names are str, not {type(name).__name__}")
    return items


def _file_part(name: str, value: Any) -> tuple[bytes, bytes | FileSource]:
    """A file's part head and content, from the forms requests and httpx take."""
    headers: Mapping[str, str] = {}
    content_type = None
    if isinstance(value, tuple):
        if not 2 <= len(value) <= 4:
            raise InvalidRequest("a files= tuple is (filename, content[, content_type[, headers]])")
        filename, content, *rest = value
        content_type = rest[0] if rest else None
        headers = rest[1] if len(rest) > 1 else {}
    else:
        content, filename = value, None
        if isinstance(value, (str, os.PathLike)):
            filename = os.path.basename(os.fspath(value))
        elif hasattr(value, "read"):
            filename = os.path.basename(str(getattr(value, "name", None) or "upload"))
        else:
            filename = "upload"  # as httpx names bytes without a filename
    # A bare str is a path (as the value of a name); in a tuple, text content
    # (as in httpx and requests), and only an os.PathLike is a path there.
    if isinstance(content, os.PathLike) or (isinstance(content, str) and content is value):
        body: bytes | FileSource = FileSource(path=content)
    elif hasattr(content, "read"):
        if isinstance(content, io.TextIOBase):
            raise InvalidRequest(
                f"files={name!r}: the file is open in text mode; open it with 'rb'"
            )
        body = FileSource(file=content)
    else:
        body = _as_bytes(content, f"files={name!r} content")
    lines = [b"Content-Disposition: form-data; " + form_param("name", name)]
    if filename is not None:
        lines[0] += b"; " + form_param("filename", str(filename))
    lines.append(b"Content-Type: " + _media_type(content_type or _content_type(filename), name))
    for key, text in headers.items():
        if not isinstance(key, str) or not _TOKEN.fullmatch(key):
            raise InvalidRequest(f"files={name!r}: the part header name {key!r} is not a token")
        if not isinstance(text, str) or any(c in text for c in "\r\n\x00"):
            raise InvalidRequest(f"files={name!r}: the part header {key!r} has CR, LF or NUL")
        lines.append(f"{key}: {text}".encode())
    return b"\r\n".join(lines), body


class MultipartBody:
    """A multipart/form-data body: parts of in-memory bytes and files."""

    __slots__ = ("boundary", "parts", "fields")

    def __init__(
        self,
        boundary: str,
        parts: list[tuple[bytes, bytes | FileSource]],
        fields: list[tuple[str, bytes]] = (),
    ):
        self.boundary = boundary
        self.parts = parts
        #: The data= fields as (name, value): secret-named ones are masked in
        #: views and errors as a urlencoded form's are (Secrets.add_request).
        self.fields = list(fields)

    @classmethod
    def build(cls, data: Any, files: Any, boundary: str | None = None) -> MultipartBody:
        """From ``data=`` fields and ``files=`` (both a dict or a list of pairs)."""
        fields = [
            (name, _as_bytes(value, f"data={name!r}")) for name, value in _pairs(data, "data=")
        ]
        parts: list[tuple[bytes, bytes | FileSource]] = [
            (b"Content-Disposition: form-data; " + form_param("name", name), value)
            for name, value in fields
        ]
        parts.extend(_file_part(name, value) for name, value in _pairs(files, "files="))
        memory = [b for head, content in parts for b in (head, content) if isinstance(b, bytes)]
        # RFC 2046 section 5.1.1: the boundary must not occur in the content.
        # Random 128 bits cannot be checked against files not yet read, but
        # what is in memory is checked (a body may embed a previous upload).
        import secrets  # only for uploads: importing it costs ~4 ms

        while boundary is None or any(boundary.encode() in b for b in memory):
            boundary = secrets.token_hex(16)
        return cls(boundary, parts, fields)

    @property
    def content_type(self) -> bytes:
        return b"multipart/form-data; boundary=" + self.boundary.encode("ascii")

    @property
    def files(self) -> list[FileSource]:
        return [c for _, c in self.parts if isinstance(c, FileSource)]

    @property
    def replayable(self) -> bool:
        return all(f.replayable for f in self.files)

    def measure(self) -> int | None:
        """Blocking (a worker thread: a stat on a hung network file system, or
        seeking to the end of a compressed member, must not hold the loop): the
        body's length, None if a size is unknown. Nothing is opened here."""
        sizes = [source.measure() for source in self.files]
        if None in sizes:
            return None
        fixed = sum(len(b) for b in self._segments() if not isinstance(b, FileSource))
        return fixed + sum(sizes)

    def segments(self) -> Iterator[bytes | FileSource]:
        """The body in order: files, and the bytes between them joined into
        pieces of at most SLICE_BYTES (a form of small parts is one write)."""
        buffer = bytearray()
        for segment in self._segments():
            if isinstance(segment, FileSource):
                if buffer:
                    yield bytes(buffer)
                    buffer.clear()
                yield segment
                continue
            if buffer and len(buffer) + len(segment) > SLICE_BYTES:
                yield bytes(buffer)
                buffer.clear()
            buffer += segment
        if buffer:
            yield bytes(buffer)

    def _segments(self) -> Iterator[bytes | memoryview | FileSource]:
        delimiter = b"--" + self.boundary.encode("ascii")
        for head, content in self.parts:
            yield delimiter + b"\r\n" + head + b"\r\n\r\n"
            if isinstance(content, FileSource):
                yield content
            else:
                view = memoryview(content)
                for at in range(0, len(content), SLICE_BYTES):
                    yield view[at : at + SLICE_BYTES]
            yield b"\r\n"
        yield delimiter + b"--\r\n"

    def close(self) -> None:
        """Close the files nbfetch opened (never a caller's file object)."""
        for source in self.files:
            source.close()
