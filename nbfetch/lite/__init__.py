"""nbfetch in JupyterLite: build a browser-only site with nbfetch, offline, and serve it.

::

    python -m nbfetch.lite prepare              # once, online: PyPI and npm into a cache
    python -m nbfetch.lite build --output site  # offline, from the cache only
    python -m nbfetch.lite serve site           # the site and the demo endpoints, 127.0.0.1

These run on the host (CPython), never in the browser.
"""
