"""Drive a widget the way the browser does, and capture what it sends (BROWSER_TESTS.md)."""

from __future__ import annotations


class Sent:
    """Captures kernel -> browser comm traffic of one widget."""

    def __init__(self, widget, monkeypatch):
        self.messages = []
        monkeypatch.setattr(widget.comm, "send", self._send)

    def _send(self, data=None, metadata=None, buffers=None):
        self.messages.append(data)

    def custom(self):
        return [m["content"] for m in self.messages if m.get("method") == "custom"]

    def updates(self):
        return [m["state"] for m in self.messages if m.get("method") == "update"]


def from_browser_update(widget, **state):
    """What arrives when the JavaScript calls model.set(...); model.save_changes()."""
    widget._handle_msg({"content": {"data": {"method": "update", "state": state,
                                             "buffer_paths": []}}, "buffers": []})


def from_browser_custom(widget, content):
    """What arrives when the JavaScript calls model.send(content)."""
    widget._handle_msg({"content": {"data": {"method": "custom", "content": content}},
                        "buffers": []})
