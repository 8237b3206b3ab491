"""The ``.http`` workflow: files in the format of VS Code REST Client, JetBrains
HTTP Client and httpyac, parsed (``parse_http``, ``read_http_file``), their
``{{templates}}`` expanded from variables, environments, earlier responses and
the notebook (``Scope``), and each request turned into ``FetchOptions``
(``to_options``)."""

from .environments import Environment, load_environment
from .jsonpath import jsonpath, jsonpath_one
from .model import Assertion, HttpFile, HttpRequestBlock
from .parse import parse_assertion, parse_http, read_http_file
from .requests import to_options
from .variables import Scope

__all__ = [
    "Assertion",
    "Environment",
    "HttpFile",
    "HttpRequestBlock",
    "Scope",
    "jsonpath",
    "jsonpath_one",
    "load_environment",
    "parse_assertion",
    "parse_http",
    "read_http_file",
    "to_options",
]

# Checking the ?? lines and running whole files (``nbfetch run FILE``).
from .checks import AssertionResult, check
from .report import render_table
from .run import RequestResult, RunObserver, RunResult, arun_http

__all__ += [
    "AssertionResult",
    "RequestResult",
    "RunObserver",
    "RunResult",
    "arun_http",
    "check",
    "render_table",
]
