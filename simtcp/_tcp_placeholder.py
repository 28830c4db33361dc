"""TEMPORARY stand-in for simtcp.tcp.layer until the engine lands; removed then."""

from __future__ import annotations

from typing import Any

from .errors import SimtcpError


class TcpInfo:
    pass


class TcpLayer:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._host = kwargs["host"]

    def connection_count(self) -> int:
        return 0

    def segment_received(self, *args: Any, **kwargs: Any) -> None:
        self._host.stats.count("tcp.placeholder_dropped")

    def icmp_error_received(self, **kwargs: Any) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        raise SimtcpError("TCP is not available yet")
