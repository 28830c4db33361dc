"""simtcp.backends.privilege and the --attach checks: accounts, the kernel's ownership rule,
the switch itself (in a forked child, as root), and the wire-capture writer."""

from __future__ import annotations

import io
import os
import pwd

import pytest

from simtcp.backends import privilege, tapsetup
from simtcp.backends.tap import WirePcapWriter
from simtcp.wire.checksum import internet_checksum
from simtcp.wire.offload import l4_checksum_ok
from simtcp.wire.pcap import read_pcap


def test_find_account_by_name_and_by_number() -> None:
    nobody = pwd.getpwnam("nobody")
    by_name = privilege.find_account("nobody")
    assert (by_name.uid, by_name.gid) == (nobody.pw_uid, nobody.pw_gid)
    assert privilege.find_account(str(nobody.pw_uid)) == by_name


@pytest.mark.parametrize("name", ["no-such-user-h8", "", "99999999999999999999"])
def test_unknown_user_is_one_line(name: str) -> None:
    with pytest.raises(privilege.PrivilegeError) as raised:
        privilege.find_account(name)
    assert "no such user" in str(raised.value) and "\n" not in str(raised.value)


def test_dropping_to_root_is_refused() -> None:
    with pytest.raises(privilege.PrivilegeError, match="--keep-root"):
        privilege.drop_privileges(privilege.Account(name="root", uid=0, gid=0))


def test_process_status_reads_our_own() -> None:
    status = privilege.process_status("self")
    assert status["Pid"] == str(os.getpid())
    assert status["Uid"].split()[0] == str(os.getuid())


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
def test_drop_privileges_leaves_nothing() -> None:
    """In a forked child: afterwards no capability in any set, no groups, no_new_privs."""
    account = privilege.find_account("nobody")
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        try:
            privilege.drop_privileges(account)
            status = privilege.process_status("self")
            sets = ",".join(str(int(status[key], 16)) for key in ("CapEff", "CapPrm", "CapBnd"))
            report = f"{status['Uid']}|{status['Groups']}|{sets}|{status['NoNewPrivs']}"
            os.write(write, report.encode())
        finally:
            os._exit(0)
    os.close(write)
    report = os.read(read, 4096).decode()
    os.close(read)
    os.waitpid(child, 0)
    uid = str(account.uid)
    assert report == f"{uid}\t{uid}\t{uid}\t{uid}||0,0,0|1"


@pytest.mark.parametrize(
    "owner, group, ours",
    [
        (-1, -1, True),  # no owner, no group: the kernel lets anyone attach
        ("me", -1, True),
        ("other", -1, False),
        (-1, "mine", True),
        (-1, "other", False),
        ("me", "other", False),  # both are checked when both are set
    ],
)
def test_may_attach_follows_tun_not_capable(owner: object, group: object, ours: bool) -> None:
    uid = os.geteuid() if owner == "me" else (os.geteuid() + 1 if owner == "other" else owner)
    gid = os.getegid() if group == "mine" else (12345678 if group == "other" else group)
    assert isinstance(uid, int) and isinstance(gid, int)
    assert tapsetup.may_attach(uid, gid) is ours


def test_attach_checks_name_the_problem() -> None:
    with pytest.raises(tapsetup.TapError, match="does not exist .*ip tuntap add"):
        tapsetup.check_attachable("simtcp-none0")
    with pytest.raises(tapsetup.TapError, match="lo is not a TUN/TAP device"):
        tapsetup.check_attachable("lo")
    with pytest.raises(tapsetup.TapError, match="invalid device name"):
        tapsetup.check_attachable("a/b")


def test_wire_pcap_cuts_and_fills_checksums() -> None:
    """A 4,000-byte TCP segment with a zero checksum is recorded as three wire frames with
    right checksums; a non-IP frame is recorded as it came."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether

    frame = bytearray(
        bytes(
            Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
            / IP(src="10.0.0.1", dst="10.0.0.2")
            / TCP(sport=80, dport=5555, seq=1, ack=1, flags="A")
            / (b"x" * 4000)
        )
    )
    frame[14 + 20 + 16 : 14 + 20 + 18] = b"\0\0"  # partial (here: absent) checksum
    arp = bytes(12) + b"\x08\x06" + bytes(28)
    stream = io.BytesIO()
    writer = WirePcapWriter(stream, mtu=1500)
    writer.write(1_000_000, bytes(frame))
    writer.write(1_000_001, arp)
    stream.seek(0)
    records = list(read_pcap(stream))
    assert [len(frame) for _, frame in records] == [1514, 1514, 1134, len(arp)]
    for _, piece in records[:3]:
        assert internet_checksum(piece[14:34]) == 0 and l4_checksum_ok(piece[14:])
    assert records[3][1] == arp
