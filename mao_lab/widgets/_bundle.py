"""Join a widget's ES module with the shared helper files (no build step: plain text).

Helper files (``util.js``, ``graph_*.js``) declare functions only; the last file of a
bundle is the one with ``export default``.
"""

from __future__ import annotations

from .._assets import read_asset


def bundle(*names: str) -> str:
    """Concatenate ``widgets/<name>`` files in order, each headed by its name.

    Example:
        >>> "export default" in bundle("util.js", "monitor.js")
        True
    """
    return "\n".join(f"/* ---- {name} */\n{read_asset('widgets', name)}" for name in names)
