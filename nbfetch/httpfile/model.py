"""What a ``.http`` file holds, as parsed (templates not yet expanded).

The format is the one VS Code REST Client, JetBrains HTTP Client and httpyac
share: ``###`` separates requests, ``@name = value`` defines a file variable,
``# @name login`` names a request, ``{{name}}`` is a template, and a ``??`` line
after a request is an assertion (httpyac's form).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Assertion:
    """One ``?? subject [argument] [operator [expected]]`` line."""

    subject: str  # "status", "header", "body", "duration", "py"
    argument: str | None  # a header name, a JSONPath, or the Python expression
    operator: str | None  # "==", "contains", "exists", ... (None: "py" only)
    expected: str | None  # as written; templates are expanded when checked
    text: str  # the whole line as written, for messages
    line: int  # 1-based line number in its source


@dataclass
class HttpRequestBlock:
    """One request of a file or cell, as written."""

    method: str
    url: str  # with {{templates}}; query continuation lines already joined
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: str | None = None  # the text after the blank line
    body_file: str | None = None  # "< ./payload.json": the path, relative to the file
    # "<@ ./payload.json" (REST Client): expand {{templates}} in the file's content,
    # read in body_file_encoding ("<@latin1 ./x"; None: UTF-8)
    body_file_templates: bool = False
    body_file_encoding: str | None = None
    name: str | None = None  # "# @name login"
    title: str | None = None  # the text after "###"
    settings: dict[str, str] = field(default_factory=dict)  # "no-redirect", "no-cookie-jar", ...
    assertions: list[Assertion] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)  # "@x = 1" inside this block
    line: int = 0  # 1-based line of the request line
    header_lines: list[int] = field(default_factory=list)  # the line of each header
    body_line: int = 0  # the line the body starts on (0: no body)
    source: str = "cell"  # the file's path, or "cell"
    # Body files must be inside the file's folder: set for a file read from disk
    # (read_http_file), whose author may not be the reader; a cell's are anywhere.
    confined: bool = False


@dataclass
class HttpFile:
    """A whole file: its variables (``@name = value``) and its requests in order."""

    variables: dict[str, str] = field(default_factory=dict)
    requests: list[HttpRequestBlock] = field(default_factory=list)
    source: str = "cell"
    directory: str | None = None  # where relative paths (bodies, env files) resolve
    confined: bool = False  # its requests' body files must be under directory
