"""Run packetdrill-format scripts against the sans-IO stack in virtual time."""
