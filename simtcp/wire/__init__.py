"""Packet formats, one module each: parse bytes into a representation, build bytes back.

Every parser raises only :class:`simtcp.errors.ParseError` (a ValueError) on
malformed input.
"""
