"""A view that ends as a static output: shown under a display id of its own, it
becomes a text/html + text/plain bundle when it settles and its widget models
close, so a saved notebook shows its final state and a reload never says "model
not found" (issue 15, D1). ``ManyView`` and ``RunView`` are such views."""

from __future__ import annotations

import uuid


class SettlesToStatic:
    """Mixed in before the widget class; the view provides ``_repr_mimebundle_``
    (its live form), ``text()`` and ``html()`` (its static form)."""

    _static: dict[str, str] | None = None
    _display_id: str | None = None

    def _ipython_display_(self) -> None:
        from IPython.display import display

        if self._static is not None:  # settled: nothing live left to show
            display(self._static, raw=True)
            return
        if self._display_id is None:
            self._display_id = uuid.uuid4().hex
        display(self._repr_mimebundle_(), raw=True, display_id=self._display_id)

    def _become_static(self, models) -> None:
        """Replace every output this view was displayed in by its static form,
        then close ``models`` (its widgets, their layouts and styles). A view never
        displayed as an output of its own (inside another widget, or only fed)
        stays a live widget with its final state."""
        if self._display_id is None:
            return
        from IPython.display import update_display

        self._static = {"text/plain": self.text(), "text/html": self.html()}
        update_display(self._static, raw=True, display_id=self._display_id)
        for model in models:
            model.close()
