"""Run packetdrill-format scripts against the sans-IO stack in virtual time.

``run_script(path_or_text)`` parses and runs one script and returns a
:class:`ScriptResult`; ``simtcp drill SCRIPT.pkt ...`` is the command-line
face (:mod:`simtcp.programs.drill`). See :mod:`simtcp.drill.runner` for the
semantics and :mod:`simtcp.drill.parser` for the language.

Beyond packetdrill: ``--simtcp_<field>=value`` header lines set a
:class:`~simtcp.tcp.config.TcpConfig` field (``--simtcp_msl=1s``);
``--remote_port`` picks the remote's port; ``// xfail: reason`` on a leading
comment line marks a known failure; every payload carries the byte pattern of
its stream offset, so reads and sent segments are checked byte for byte in
strict mode; ``run_script(..., remote_isn=, seed=)`` moves both ISNs.

The dialect of the public corpora (preprocessor, shell-command allow-list
and sysctl table, times, annotations, calls) is described in docs/drill.md;
what is not supported skips the script with the reason: IPv6, UDP and ICMPv6
packets, outbound ICMP lines, AccECN flags, the TCP options FO, md5 and MPTCP,
system calls and options without a mapping onto the Stack API, options that
configure the stack once it runs, shell commands off the allow-list. ``%{ }%``
blocks are never run (reported as skipped lines); TSval of outbound segments is
not checked; one connection 4-tuple per script.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from .model import Script
from .parser import ScriptSyntaxError, load_script, parse_script
from .runner import DEFAULT_REMOTE_ISN, Failure, Runner, ScriptResult, run_parsed


def _load(path_or_text: str | Path, defines: Mapping[str, str] | None) -> Script:
    if isinstance(path_or_text, Path) or (
        "\n" not in path_or_text and Path(path_or_text).is_file()
    ):
        return load_script(path_or_text, defines=defines)
    return parse_script(path_or_text, defines=defines)


def run_script(
    path_or_text: str | Path,
    *,
    lenient: bool = False,
    seed: int = 0,
    remote_isn: int = DEFAULT_REMOTE_ISN,
    tolerance_us: int | None = None,
    defines: Mapping[str, str] | None = None,
    ip_version: str | None = None,
) -> ScriptResult:
    """Parse and run one script (a file path or the script's text).

    A syntax error is a failed result naming the line, not an exception;
    ``defines`` are ``-D NAME=VALUE`` symbols for ``#ifdef`` blocks; ``ip_version``
    (``ipv4``, ``ipv6``, ``ipv4-mapped-ipv6``) runs it as that family.
    """
    name = (
        str(path_or_text)
        if isinstance(path_or_text, Path) or "\n" not in path_or_text
        else "<script>"
    )
    try:
        script = _load(path_or_text, defines)
    except ScriptSyntaxError as error:
        return ScriptResult(
            name=name,
            status="failed",
            failure=Failure(line=error.line, message=f"syntax error: {error.message}"),
        )
    except OSError as error:
        return ScriptResult(
            name=name,
            status="failed",
            failure=Failure(line=0, message=f"cannot read the script: {error}"),
        )
    except Exception as error:  # a bug of ours: still one result, never a stopped run
        return ScriptResult(
            name=name,
            status="failed",
            failure=Failure(line=0, message=f"drill parser error {type(error).__name__}: {error}"),
        )
    try:
        return run_parsed(
            script,
            lenient=lenient,
            seed=seed,
            remote_isn=remote_isn,
            tolerance_us=tolerance_us,
            ip_version=ip_version,
        )
    except Exception as error:
        return ScriptResult(
            name=name,
            status="failed",
            failure=Failure(line=0, message=f"drill runner error {type(error).__name__}: {error}"),
        )


__all__ = [
    "DEFAULT_REMOTE_ISN",
    "Failure",
    "Runner",
    "Script",
    "ScriptResult",
    "ScriptSyntaxError",
    "load_script",
    "parse_script",
    "run_parsed",
    "run_script",
]
