"""TCP (RFC 9293): the connection engine behind :class:`simtcp.Stack`'s TCP API.

:class:`TcpLayer` is the one object the stack talks to; :class:`TcpConfig`
tunes it and :class:`TcpInfo` describes a connection.
"""

from __future__ import annotations

from .config import TcpConfig
from .connection import TcpInfo
from .layer import TcpLayer
from .machine import State

__all__ = ["State", "TcpConfig", "TcpInfo", "TcpLayer"]
