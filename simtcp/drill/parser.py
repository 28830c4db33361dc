"""Parse packetdrill's script language (as google/packetdrill documents it) into :mod:`.model`.

The parser works in three passes: blank out comments (keeping line numbers and
leaving backtick commands, strings and ``%{ }%`` blocks alone), join the
physical lines of one event (open brackets or an open code block continue it),
then parse each event by its first word after the time: ``<``/``>`` packets,
a backtick shell command, a ``%{`` code block, or a system call.

Features recognised but not runnable (UDP or IPv6 packets, ECN or IP-header
annotations, unknown TCP options) become :class:`UnsupportedEvent` so that a
report can name them; malformed text raises :class:`ScriptSyntaxError`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ..wire.tcp import (
    ACK,
    CWR,
    ECE,
    FIN,
    PSH,
    RST,
    SYN,
    URG,
    TcpOption,
)
from .model import (
    ELLIPSIS,
    ArrayExpr,
    BitOr,
    CallExpr,
    CodeEvent,
    Event,
    Expr,
    HeaderOption,
    IcmpEvent,
    PacketEvent,
    Script,
    ShellEvent,
    StringExpr,
    StructExpr,
    Symbol,
    SyscallEvent,
    TimeKind,
    TimeSpec,
    UnsupportedEvent,
)
from .preprocess import PreprocessError, header_defines, preprocess
from .syntax import ScriptSyntaxError, _Unsupported
from .tcpoptions import ANY_TS, check_inbound_options, option_number, parse_options

__all__ = ["ANY_TS", "FLAG_BITS", "ScriptSyntaxError", "parse_options", "parse_script"]


FLAG_BITS = {"F": FIN, "S": SYN, "R": RST, "P": PSH, ".": ACK, "U": URG, "E": ECE, "W": CWR}
_ECN_WORDS = ("noecn", "ect0", "ect1", "ce", "ect01")

_NUMBER = r"(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?"
_TIME_RE = re.compile(
    rf"^(?:(?P<any>\*)"
    rf"|(?P<rplus1>\+?)(?P<r1>{_NUMBER})\s*~\s*(?P<rplus2>\+?)(?P<r2>{_NUMBER})"
    rf"|(?P<bplus1>\+?)(?P<b1>{_NUMBER})\s*\.\.\.\s*(?P<bplus2>\+?)(?P<b2>{_NUMBER})"
    rf"|(?P<plus>\+?)(?P<t>{_NUMBER}))(?=\s|$|`|%)"
)
_SEQ_RE = re.compile(r"^(\d+):(\d+)\((\d+)\)$")
_DIRECTIVE_RE = re.compile(r"^\s*//\s*([A-Za-z][\w-]*)\s*:\s*(.*?)\s*$")
_RESULT_RE = re.compile(
    r"^(?P<value>\.\.\.|-?(?:0x[0-9a-fA-F]+|\d+))"
    r"(?:\s+(?P<errno>[A-Z][A-Z0-9_]*))?(?:\s*\((?P<text>.*)\))?\s*$"
)


def seconds_to_us(text: str) -> int:
    """``"0.100"`` -> 100000; exact decimal arithmetic, rounded to the microsecond."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a time: {text!r}") from None
    return int((value * 1_000_000).to_integral_value())


def parse_flags(text: str) -> int:
    """``"S."`` -> SYN|ACK; letters in any order; ValueError for anything else."""
    bits = 0
    for letter in text:
        bit = FLAG_BITS.get(letter)
        if bit is None or bits & bit:
            raise ValueError(f"bad TCP flags {text!r}")
        bits |= bit
    return bits


# --- pass 1: comments ---------------------------------------------------------


def strip_comments(text: str) -> str:
    """Blank ``//`` and ``/* */`` comments (newlines kept) outside strings, backticks, code."""
    out: list[str] = []
    index, end = 0, len(text)
    while index < end:
        char = text[index]
        pair = text[index : index + 2]
        if pair == "%{":
            close = text.find("}%", index + 2)
            stop = end if close < 0 else close + 2
        elif char in '`"':
            close = text.find(char, index + 1)
            stop = end if close < 0 else close + 1
        elif pair == "//":
            close = text.find("\n", index)
            stop = end if close < 0 else close
            out.append(" " * (stop - index))
            index = stop
            continue
        elif pair == "/*":
            close = text.find("*/", index + 2)
            stop = end if close < 0 else close + 2
            out.append(re.sub(r"[^\n]", " ", text[index:stop]))
            index = stop
            continue
        else:
            out.append(char)
            index += 1
            continue
        out.append(text[index:stop])
        index = stop
    return "".join(out)


def _leading_directives(text: str) -> tuple[tuple[str, str], ...]:
    """``// xfail: reason`` comments on the lines before the first non-comment line."""
    directives: list[tuple[str, str]] = []
    for raw in text.splitlines():
        if not raw.strip():
            continue
        if not raw.lstrip().startswith("//"):
            break
        match = _DIRECTIVE_RE.match(raw)
        if match:
            directives.append((match.group(1).lower(), match.group(2)))
    return tuple(directives)


# --- pass 2: logical lines ----------------------------------------------------


def _depth_change(line: str) -> int:
    depth = 0
    in_string = False
    for char in line:
        if char == '"':
            in_string = not in_string
        elif not in_string and char in "([{":
            depth += 1
        elif not in_string and char in ")]}":
            depth -= 1
    return depth


def logical_lines(cleaned: str) -> list[tuple[int, str]]:
    """(first line number, text) of each event or header option, continuation lines joined."""
    lines = cleaned.split("\n")
    result: list[tuple[int, str]] = []
    index = 0
    while index < len(lines):
        text = lines[index].strip()
        start = index + 1
        index += 1
        if not text:
            continue
        if text.count("`") % 2:  # a command over several lines
            while index < len(lines) and text.count("`") % 2:
                text += "\n" + lines[index].strip()
                index += 1
        elif "%{" in text and "}%" not in text[text.index("%{") :]:
            while index < len(lines) and "}%" not in text:
                text += "\n" + lines[index]
                index += 1
        elif not text.startswith(("<", ">")) and not re.search(r"[<>]\s", text):
            depth = _depth_change(text)
            while depth > 0 and index < len(lines):
                text += " " + lines[index].strip()
                depth += _depth_change(lines[index])
                index += 1
        result.append((start, text.strip()))
    return result


# --- pass 3: events -----------------------------------------------------------


def parse_time(text: str, line: int) -> tuple[TimeSpec, str]:
    """Split the leading time off an event; returns (time, rest of the text)."""
    match = _TIME_RE.match(text)
    if match is None:
        raise ScriptSyntaxError(line, f"expected a time at the start of {text!r}")
    groups = match.groupdict()
    rest = text[match.end() :].strip()
    if groups["any"]:
        return TimeSpec(kind=TimeKind.ANY), rest
    if groups["r1"] is not None:
        first_relative, second_relative = bool(groups["rplus1"]), bool(groups["rplus2"])
        if first_relative != second_relative:
            raise ScriptSyntaxError(line, "a time range must be both absolute or both relative")
        kind = TimeKind.RELATIVE_RANGE if first_relative else TimeKind.ABSOLUTE_RANGE
        low, high = seconds_to_us(groups["r1"]), seconds_to_us(groups["r2"])
        if high < low:
            raise ScriptSyntaxError(line, "a time range must not end before it starts")
        return TimeSpec(kind=kind, start_us=low, end_us=high), rest
    if groups["b1"] is not None:
        # packetdrill: ``+a...b`` has both ends relative to the previous event
        # (the end is offset like the start), ``a...b`` both absolute; the end
        # is written without a '+'.
        if groups["bplus2"]:
            raise ScriptSyntaxError(line, "the end of a 'start...end' time takes no '+'")
        relative = bool(groups["bplus1"])
        low, high = seconds_to_us(groups["b1"]), seconds_to_us(groups["b2"])
        if high < low:
            raise ScriptSyntaxError(line, "a blocking call's end time is before its start")
        return TimeSpec(
            kind=TimeKind.RELATIVE if relative else TimeKind.ABSOLUTE,
            start_us=low,
            blocking_end_us=high,
            blocking_end_relative=relative,
        ), rest
    kind = TimeKind.RELATIVE if groups["plus"] else TimeKind.ABSOLUTE
    return TimeSpec(kind=kind, start_us=seconds_to_us(groups["t"])), rest


def parse_event(text: str, line: int) -> Event:
    """Parse one logical line (time included) into an event."""
    time, rest = parse_time(text, line)
    outbound = rest.startswith(">")
    if time.kind is TimeKind.ANY and not outbound:
        raise ScriptSyntaxError(line, "event time * can only be used with outbound packets")
    if time.kind in (TimeKind.ABSOLUTE_RANGE, TimeKind.RELATIVE_RANGE) and not outbound:
        raise ScriptSyntaxError(line, "event time range can only be used with outbound packets")
    if time.blocking_end_us is not None and rest[:1] in ("<", ">", "`", "%"):
        raise ScriptSyntaxError(line, "'start...end' times are for system calls")
    try:
        if rest.startswith("`"):
            if not rest.endswith("`") or len(rest) < 2:
                raise ScriptSyntaxError(line, "unterminated backtick command")
            return ShellEvent(line=line, time=time, text=text, command=rest[1:-1].strip())
        if rest.startswith("%{"):
            if not rest.endswith("}%"):
                raise ScriptSyntaxError(line, "unterminated %{ }% block")
            return CodeEvent(line=line, time=time, text=text, code=rest[2:-2].strip())
        if rest[:1] in ("<", ">"):
            return _parse_packet_line(rest, time, text, line)
        return _parse_syscall(rest, time, text, line)
    except _Unsupported as unsupported:
        return UnsupportedEvent(line=line, time=time, text=text, feature=unsupported.feature)


def _parse_packet_line(rest: str, time: TimeSpec, text: str, line: int) -> Event:
    inbound = rest[0] == "<"
    body = rest[1:].strip()
    words = body.split(None, 1)
    if not words:
        raise ScriptSyntaxError(line, "empty packet line")
    if words[0] == "icmp":
        return _parse_icmp(words[1] if len(words) > 1 else "", inbound, time, text, line)
    ip_info, body = _split_ip_info(body, line, inbound)
    words = body.split(None, 1)
    if not words:
        raise ScriptSyntaxError(line, "empty packet line")
    if words[0] == "icmp":
        return _parse_icmp(words[1] if len(words) > 1 else "", inbound, time, text, line)
    if words[0] in ("udp", "icmpv6"):
        raise _Unsupported(f"{words[0]} packets")
    if words[0] in ("ipv6", "ipv4", "gre", "mpls"):
        raise _Unsupported(f"encapsulated packets ({words[0]} ...:)")
    if re.match(r"^\d+>\d+$", words[0]):
        raise _Unsupported("explicit ports on packet lines")
    event = parse_tcp_spec(body, line, time=time, text=text, inbound=inbound)
    return dataclasses.replace(event, **ip_info) if ip_info else event


def _split_ip_info(body: str, line: int, inbound: bool) -> tuple[dict[str, Any], str]:
    """``[ect0] S 0:0(0)...`` or ``(tos 0x2) ...`` -> ({ecn/tos/ttl}, rest)."""
    if not body.startswith(("[", "(")):
        return {}, body
    closing = "]" if body[0] == "[" else ")"
    end = body.find(closing)
    if end < 0:
        raise ScriptSyntaxError(line, f"IP header annotation without '{closing}'")
    info: dict[str, Any] = {}
    for part in (part.strip() for part in body[1:end].split(",")):
        words = part.split()
        if len(words) == 1 and words[0] in _ECN_WORDS:
            if words[0] == "ect01" and inbound:
                raise ScriptSyntaxError(line, "[ect01] can only be used with outbound packets")
            info["ecn"] = words[0]
        elif len(words) == 2 and words[0] in ("tos", "ttl", "flowlabel"):
            try:
                value = int(words[1], 0)
            except ValueError:
                raise ScriptSyntaxError(line, f"{words[0]} needs a number") from None
            if words[0] == "flowlabel":
                raise _Unsupported("IPv6 not supported (flowlabel)")
            if not 0 <= value <= 255:
                raise ScriptSyntaxError(line, f"{words[0]} out of range for 8 bits")
            info[words[0]] = value
        else:
            raise ScriptSyntaxError(line, f"unknown IP header annotation {part!r}")
    return info, body[end + 1 :].strip()


def _attributes(words: list[str], line: int) -> dict[str, int]:
    """``ack 1 win 1000 urg 5`` -> {"ack": 1, "win": 1000, "urg": 5}."""
    values: dict[str, int] = {}
    for index in range(0, len(words), 2):
        key = words[index]
        if key not in ("ack", "win", "urg"):
            raise _Unsupported(f"packet attribute {key!r}")
        if index + 1 >= len(words) or not words[index + 1].isdigit():
            raise ScriptSyntaxError(line, f"{key} needs a number")
        values[key] = int(words[index + 1])
    return values


def _split_options(body: str, line: int, inbound: bool) -> tuple[str, tuple[TcpOption, ...] | None]:
    """(the text before ``<...>``, the option list; None for ``<...>``)."""
    option_start = body.find("<")
    if option_start < 0:
        return body, ()
    if not body.rstrip().endswith(">"):
        raise ScriptSyntaxError(line, "TCP option list must end with '>'")
    options = parse_options(body[option_start + 1 : body.rstrip().rindex(">")], line)
    if options is None and inbound:
        raise ScriptSyntaxError(
            line, "<...> for TCP options can only be used with outbound packets"
        )
    if options is not None and inbound:
        check_inbound_options(options, line)
    return body[:option_start], options


def _packet_flags(word: str, line: int) -> int:
    """``S.``, ``P.``, ``-`` (none); AccECN's AE and ACE digits are unsupported."""
    if word == "-":
        return 0
    if re.search(r"[A0-7]", word):
        raise _Unsupported("AccECN flags (AE, ACE counts)")
    try:
        return parse_flags(word)
    except ValueError as error:
        raise ScriptSyntaxError(line, str(error)) from None


def _sequence(word: str, line: int) -> tuple[int, int, int]:
    match = _SEQ_RE.match(word)
    if match is None:
        raise ScriptSyntaxError(line, f"expected start:end(length), got {word!r}")
    start, end, length = (int(group) for group in match.groups())
    if (end - start) % 2**32 != length:
        raise ScriptSyntaxError(line, f"{word}: end - start must equal the length")
    return start, end, length


def parse_tcp_spec(
    body: str, line: int, *, time: TimeSpec, text: str, inbound: bool
) -> PacketEvent:
    """``S. 0:0(0) ack 1 win 1000 <mss 1460>`` (after the direction) -> a :class:`PacketEvent`."""
    body, options = _split_options(body, line, inbound)
    words = body.split()
    if len(words) < 2:
        raise ScriptSyntaxError(line, f"expected flags and start:end(length) in {body!r}")
    flags = _packet_flags(words[0], line)
    start, end, length = _sequence(words[1], line)
    values = _attributes(words[2:], line)
    if inbound and "win" not in values:
        # packetdrill's tcp_packet.c: "window must be specified for inbound packets".
        raise ScriptSyntaxError(line, "window must be specified for inbound packets")
    if inbound and flags & ACK and "ack" not in values:
        values["ack"] = 0  # packetdrill's opt_ack default: 0, relative to the stack's ISN
    return PacketEvent(
        line=line,
        time=time,
        text=text,
        inbound=inbound,
        flags=flags,
        seq_start=start,
        seq_end=end,
        payload_length=length,
        ack=values.get("ack"),
        window=values.get("win"),
        urgent_pointer=values.get("urg"),
        options=options,
    )


def _parse_icmp(body: str, inbound: bool, time: TimeSpec, text: str, line: int) -> Event:
    quoted: PacketEvent | None = None
    bracket = body.find("[")
    if bracket >= 0:
        inner = body[bracket + 1 : body.rindex("]")].strip() if "]" in body else ""
        if not inner:
            raise ScriptSyntaxError(line, "ICMP quoted segment needs '[...]'")
        spec = ". " + inner if _SEQ_RE.match(inner.split()[0]) else inner
        quoted = parse_tcp_spec(spec, line, time=time, text=inner, inbound=False)
        body = body[:bracket]
    words = body.split()
    if len(words) < 2:
        raise ScriptSyntaxError(line, "ICMP line needs a type and a code")
    mtu: int | None = None
    if len(words) >= 4 and words[2] == "mtu":
        mtu = option_number(words, 3, line)
    return IcmpEvent(
        line=line,
        time=time,
        text=text,
        inbound=inbound,
        icmp_type=words[0],
        code=words[1],
        mtu=mtu,
        quoted=quoted,
    )


# --- system calls ---------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"\s*(?:(?P<ellipsis>\.\.\.)|(?P<number>-?0x[0-9a-fA-F]+|-?\d+)"
    r'|(?P<name>[A-Za-z_]\w*)|(?P<string>"(?:[^"\\]|\\.)*")|(?P<punct>[\[\]{}(),=|&]))'
)


def _tokens(text: str, line: int) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    index = 0
    text = text.rstrip()
    while index < len(text):
        match = _TOKEN_RE.match(text, index)
        if match is None or match.end() == index:
            raise ScriptSyntaxError(line, f"unexpected text {text[index:].strip()!r}")
        kind = match.lastgroup or "punct"
        tokens.append((kind, match.group(kind)))
        index = match.end()
    return tokens


class _ExprParser:
    """Recursive descent over system call arguments."""

    def __init__(self, tokens: list[tuple[str, str]], line: int) -> None:
        self.tokens = tokens
        self.index = 0
        self.line = line

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            wanted = repr(value) if value else "more"
            raise ScriptSyntaxError(self.line, f"expected {wanted} in system call arguments")
        self.index += 1
        return token

    def expr_list(self, closing: str) -> tuple[Expr, ...]:
        items: list[Expr] = []
        while self.peek() is not None and self.peek() != ("punct", closing):
            items.append(self.expr())
            if self.peek() == ("punct", ","):
                self.take(",")
        self.take(closing)
        return tuple(items)

    def expr(self) -> Expr:
        parts = [self.term()]
        while self.peek() == ("punct", "|"):
            self.take("|")
            parts.append(self.term())
        if len(parts) == 1:
            return parts[0]
        joined = [part for part in parts if isinstance(part, (int, Symbol))]
        if len(joined) != len(parts):
            raise ScriptSyntaxError(self.line, "'|' joins only names and numbers")
        return BitOr(parts=tuple(joined))

    def term(self) -> Expr:
        kind, value = self.take()
        if kind == "ellipsis":
            return ELLIPSIS
        if kind == "number":
            return int(value, 0)
        if kind == "string":
            return StringExpr(text=value[1:-1].encode().decode("unicode_escape"))
        if kind == "name":
            if self.peek() == ("punct", "("):
                self.take("(")
                return CallExpr(name=value, args=self.expr_list(")"))
            return Symbol(name=value)
        if value == "[":
            return ArrayExpr(items=self.expr_list("]"))
        if value == "{":
            return self.struct()
        if value == "&":
            raise _Unsupported("'&' address-of arguments")
        raise ScriptSyntaxError(self.line, f"unexpected {value!r} in system call arguments")

    def struct(self) -> StructExpr:
        fields: list[tuple[str, Expr]] = []
        while self.peek() != ("punct", "}"):
            token = self.peek()
            after = self.tokens[self.index + 1] if self.index + 1 < len(self.tokens) else None
            if token is not None and token[0] == "name" and after == ("punct", "="):
                self.index += 2
                fields.append((token[1], self.expr()))
            else:
                value = self.expr()
                if isinstance(value, CallExpr) and self.peek() == ("punct", "="):
                    # msghdr fields: ``msg_name(...)=...``, ``msg_iov(1)=[...]``.
                    self.take("=")
                    fields.append((value.name, self.expr()))
                else:
                    fields.append((f"_{len(fields)}", value))
            if self.peek() == ("punct", ","):
                self.take(",")
        self.take("}")
        return StructExpr(fields=tuple(fields))


def _matching_paren(text: str, open_index: int, line: int) -> int:
    depth = 0
    in_string = False
    for index in range(open_index, len(text)):
        char = text[index]
        if char == '"' and (index == 0 or text[index - 1] != "\\"):
            in_string = not in_string
        elif not in_string and char == "(":
            depth += 1
        elif not in_string and char == ")":
            depth -= 1
            if depth == 0:
                return index
    raise ScriptSyntaxError(line, "unbalanced parentheses in system call")


def _parse_syscall(rest: str, time: TimeSpec, text: str, line: int) -> SyscallEvent:
    match = re.match(r"([A-Za-z_]\w*)\s*\(", rest)
    if match is None:
        raise ScriptSyntaxError(line, f"expected a packet, a command or a system call: {rest!r}")
    close = _matching_paren(rest, match.end() - 1, line)
    parser = _ExprParser(_tokens(rest[match.end() : close], line), line)
    args = _all_args(parser)
    tail = rest[close + 1 :].strip()
    if not tail.startswith("="):
        raise ScriptSyntaxError(line, "a system call needs '= result'")
    result = _RESULT_RE.match(tail[1:].strip())
    if result is None:
        raise ScriptSyntaxError(line, f"bad system call result {tail[1:].strip()!r}")
    value = result.group("value")
    return SyscallEvent(
        line=line,
        time=time,
        text=text,
        name=match.group(1),
        args=args,
        result=None if value == "..." else int(value, 0),
        errno=result.group("errno"),
    )


def _all_args(parser: _ExprParser) -> tuple[Expr, ...]:
    items: list[Expr] = []
    while parser.peek() is not None:
        items.append(parser.expr())
        if parser.peek() is not None:
            parser.take(",")
    return tuple(items)


# --- whole scripts --------------------------------------------------------------


def parse_script(
    text: str, name: str = "<script>", *, defines: Mapping[str, str] | None = None
) -> Script:
    """Parse a whole script; ScriptSyntaxError on the first malformed line.

    ``defines`` are the command line's ``-D NAME[=VALUE]`` symbols, for
    ``#ifdef`` blocks (:mod:`.preprocess`); the script's own ``--define``
    header lines add to them.
    """
    if "\0" in text:
        where = text[: text.index("\0")].count("\n") + 1
        raise ScriptSyntaxError(where, "NUL byte: not a text file")
    symbols = dict(defines or {})
    symbols.update(header_defines(text))
    try:
        text = preprocess(text, symbols)
    except PreprocessError as error:
        raise ScriptSyntaxError(error.line, error.message) from None
    directives = _leading_directives(text)
    options: list[HeaderOption] = []
    events: list[Event] = []
    for line, logical in logical_lines(strip_comments(text)):
        if logical.startswith("--"):
            if events:
                raise ScriptSyntaxError(line, "header options must come before the first event")
            option_name, equals, value = logical[2:].partition("=")
            options.append(
                HeaderOption(
                    line=line, name=option_name.strip(), value=value.strip() if equals else None
                )
            )
            continue
        if logical.startswith("`"):
            events.append(_untimed_command(logical, line))
            continue
        events.append(parse_event(logical, line))
    _check_untimed(events)
    return Script(name=name, options=tuple(options), events=tuple(events), directives=directives)


def _untimed_command(logical: str, line: int) -> ShellEvent:
    if not logical.endswith("`") or len(logical) < 2:
        raise ScriptSyntaxError(line, "unterminated backtick command")
    return ShellEvent(
        line=line,
        time=TimeSpec(kind=TimeKind.RELATIVE),
        text=logical,
        command=logical[1:-1].strip(),
        untimed=True,
    )


def _check_untimed(events: list[Event]) -> None:
    """Untimed commands only before the first timed event (init) or after the last (cleanup)."""
    timed = [index for index, event in enumerate(events) if not _is_untimed(event)]
    if not timed:
        return
    for index, event in enumerate(events):
        if _is_untimed(event) and timed[0] < index < timed[-1]:
            raise ScriptSyntaxError(
                event.line, "a command without a time must come first or last in the script"
            )


def _is_untimed(event: Event) -> bool:
    return isinstance(event, ShellEvent) and event.untimed


def load_script(path: str | Path, *, defines: Mapping[str, str] | None = None) -> Script:
    """Read and parse a script file (UTF-8; a file that is not text is a ScriptSyntaxError)."""
    source = Path(path)
    data = source.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ScriptSyntaxError(line, "not a UTF-8 text file") from None
    return parse_script(text, name=str(source), defines=defines)
