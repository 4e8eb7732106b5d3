"""Shared output of the benchmark scripts: print the table, optionally save JSON/Markdown."""

from __future__ import annotations

import json
from typing import Any


def emit(text: str, data: Any, json_path: str | None, markdown_path: str | None) -> int:
    """Print ``text``; write ``data`` as JSON and ``text`` as Markdown when asked."""
    print(text)
    if json_path:
        with open(json_path, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1)
    if markdown_path:
        with open(markdown_path, "w", encoding="utf-8") as fh:
            fh.write(text)
    return 0
