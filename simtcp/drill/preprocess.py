"""packetdrill's preprocessor: ``#ifdef``/``#ifndef``/``#else``/``#endif`` and defined symbols.

Symbols come from the command line (``simtcp drill -D NAME[=VALUE]``, as
packetdrill's ``--define``/``-D``) and from ``--define=NAME[=VALUE]`` header
lines. A block whose condition is false is blanked line by line, so every
line keeps its number for error messages. A defined symbol that has a value
is replaced, as a whole word outside strings, by that value in the lines
that remain. Directives nest; a stray ``#else``/``#endif`` or a missing
``#endif`` is a syntax error naming its line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_DIRECTIVE_RE = re.compile(r"^\s*#\s*(ifdef|ifndef|else|endif)\b\s*(\S*)\s*$")
_DEFINE_LINE_RE = re.compile(r"^\s*--(?:define|D)\s*=\s*([A-Za-z_]\w*)(?:\s*=\s*(.*?))?\s*$")
_WORD_RE = re.compile(r'"(?:[^"\\]|\\.)*"|[A-Za-z_]\w*')


class PreprocessError(ValueError):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def header_defines(text: str) -> dict[str, str]:
    """``--define=NAME=VALUE`` lines anywhere before the first event."""
    found: dict[str, str] = {}
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith(("//", "#", "/*", "*")):
            continue
        match = _DEFINE_LINE_RE.match(stripped)
        if match:
            found[match.group(1)] = (match.group(2) or "").strip().strip('"')
        elif not stripped.startswith("--"):
            break
    return found


def _substitute(line: str, values: Mapping[str, str]) -> str:
    if not values:
        return line

    def replace(match: re.Match[str]) -> str:
        word = match.group(0)
        return values.get(word, word) if not word.startswith('"') else word

    return _WORD_RE.sub(replace, line)


def preprocess(text: str, defines: Mapping[str, str]) -> str:
    """The script with false ``#if`` blocks and every directive line blanked."""
    out: list[str] = []
    stack: list[tuple[int, bool, bool]] = []  # (line, condition, in else)
    substitutions = {name: value for name, value in defines.items() if value}
    for number, line in enumerate(text.split("\n"), start=1):
        match = _DIRECTIVE_RE.match(line)
        if match is not None:
            word, symbol = match.groups()
            if word in ("ifdef", "ifndef"):
                if not symbol:
                    raise PreprocessError(number, f"#{word} needs a symbol")
                condition = (symbol in defines) == (word == "ifdef")
                stack.append((number, condition, False))
            elif not stack:
                raise PreprocessError(number, f"#{word} without #ifdef")
            elif word == "else":
                opened, condition, in_else = stack.pop()
                if in_else:
                    raise PreprocessError(number, "a second #else")
                stack.append((opened, not condition, True))
            else:
                stack.pop()
            out.append("")
            continue
        active = all(condition for _, condition, _ in stack)
        if not active:
            out.append("")
        elif line.lstrip().startswith("--"):
            out.append(line)
        else:
            out.append(_substitute(line, substitutions))
    if stack:
        raise PreprocessError(stack[-1][0], "#ifdef without #endif")
    return "\n".join(out)
