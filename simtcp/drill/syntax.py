"""The parser's two outcomes besides success: malformed text, or a known but unrunnable feature."""

from __future__ import annotations


class ScriptSyntaxError(ValueError):
    """The script is not valid packetdrill text; ``line`` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


class _Unsupported(Exception):
    """Raised inside the parser for a known-but-unrunnable feature."""

    def __init__(self, feature: str) -> None:
        super().__init__(feature)
        self.feature = feature
