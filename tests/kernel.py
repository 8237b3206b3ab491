"""A real IPython kernel driven over ZMQ with jupyter_client, as a front end would.

Every message the kernel publishes on iopub is kept in ``self.iopub`` so tests
can count widget ``update`` messages per model, exactly as a browser receives them.
"""

from __future__ import annotations

import queue
import time
from typing import Any

from jupyter_client.manager import KernelManager


class Kernel:
    def __init__(self, cwd: str | None = None):
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(cwd=cwd)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.iopub: list[dict] = []
        self.replies: dict[str, dict] = {}

    # -- running code ------------------------------------------------------------------
    def submit(self, code: str) -> str:
        """Send an execute_request; returns its msg_id at once."""
        return self.kc.execute(code, store_history=True)

    def wait(self, msg_id: str, timeout: float = 30) -> dict:
        """Wait for the reply and the idle status of ``msg_id``; returns the reply content."""
        deadline = time.monotonic() + timeout
        idle = False
        while msg_id not in self.replies or not idle:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no reply to {msg_id} within {timeout}s")
            self._pump(min(left, 0.1))
            idle = any(
                m["parent_header"].get("msg_id") == msg_id
                and m["msg_type"] == "status"
                and m["content"]["execution_state"] == "idle"
                for m in self.iopub
            )
        return self.replies[msg_id]

    def run(self, code: str, timeout: float = 30) -> dict:
        """Execute and wait; raise if the cell failed. Returns the reply content."""
        reply = self.wait(self.submit(code), timeout)
        if reply["status"] != "ok":
            raise AssertionError(
                f"cell failed: {reply.get('ename')}: {reply.get('evalue')}\n{code}"
            )
        return reply

    def value(self, expr: str, timeout: float = 30) -> str:
        """The text/plain result of evaluating ``expr`` in the kernel."""
        msg_id = self.submit(expr)
        reply = self.wait(msg_id, timeout)
        if reply["status"] != "ok":
            raise AssertionError(f"{expr}: {reply.get('ename')}: {reply.get('evalue')}")
        for m in self.messages(msg_id, "execute_result"):
            return m["content"]["data"]["text/plain"]
        raise AssertionError(f"{expr} produced no value")

    def _pump(self, timeout: float) -> None:
        try:
            while True:
                self.iopub.append(self.kc.get_iopub_msg(timeout=0))
        except queue.Empty:
            pass
        try:
            msg = self.kc.get_shell_msg(timeout=timeout)
            self.replies[msg["parent_header"]["msg_id"]] = msg["content"]
        except queue.Empty:
            pass

    def pump_for(self, seconds: float) -> None:
        """Keep reading messages for ``seconds`` (the kernel works in the background)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._pump(0.05)

    def wait_for(self, predicate, timeout: float = 10) -> dict:
        """Read messages until one on iopub satisfies ``predicate``; returns it."""
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            for m in self.iopub[seen:]:
                if predicate(m):
                    return m
            seen = len(self.iopub)
            self._pump(0.05)
        raise TimeoutError("no such message")

    # -- messages ----------------------------------------------------------------------
    def messages(self, msg_id: str | None = None, msg_type: str | None = None) -> list[dict]:
        return [
            m
            for m in self.iopub
            if (msg_id is None or m["parent_header"].get("msg_id") == msg_id)
            and (msg_type is None or m["msg_type"] == msg_type)
        ]

    def widget_models(self, model_name: str) -> list[dict[str, Any]]:
        """comm_open messages of widgets of ``model_name`` (state and comm_id)."""
        out = []
        for m in self.iopub:
            if m["msg_type"] == "comm_open":
                state = m["content"]["data"].get("state", {})
                if state.get("_model_name") == model_name:
                    out.append({"comm_id": m["content"]["comm_id"], "state": state, "msg": m})
        return out

    def updates(self, comm_id: str) -> list[dict]:
        """The ``update`` comm messages a front end received for one model."""
        return [
            m
            for m in self.iopub
            if m["msg_type"] == "comm_msg"
            and m["content"]["comm_id"] == comm_id
            and m["content"]["data"].get("method") == "update"
        ]

    def click(self, comm_id: str) -> None:
        """What a browser sends when a Button is clicked."""
        msg = self.kc.session.msg(
            "comm_msg",
            {"comm_id": comm_id, "data": {"method": "custom", "content": {"event": "click"}}},
        )
        self.kc.shell_channel.send(msg)

    def set_state(self, comm_id: str, state: dict) -> None:
        """What a browser sends when the user changes a control: a Text's
        ``value``, a Dropdown's ``index``."""
        msg = self.kc.session.msg(
            "comm_msg",
            {"comm_id": comm_id, "data": {"method": "update", "state": state, "buffer_paths": []}},
        )
        self.kc.shell_channel.send(msg)

    def state(self, comm_id: str, key: str):
        """The latest value of ``key`` a front end has for one model: its
        comm_open state, then every update in order."""
        value = None
        for m in self.iopub:
            if m["msg_type"] not in ("comm_open", "comm_msg"):
                continue
            if m["content"]["comm_id"] != comm_id:
                continue
            state = m["content"]["data"].get("state", {})
            if key in state:
                value = state[key]
        return value

    def shutdown(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)  # by the PID jupyter_client started
