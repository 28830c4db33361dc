"""``simtcp sim scenario FILE.toml``: runs, replays byte for byte, and refuses bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from simtcp.programs.sim import main

GOOD = """\
seed = 4
duration = "120s"

[hosts.client]
address = "10.0.0.1/24"
queue = 100

[hosts.server]
address = "10.0.0.2/24"

[[links]]
between = ["client", "server"]
delay = "5ms"
rate = "20Mbit"
jitter = "1ms"
jitter_distribution = "pareto"
qdisc = "codel"
back = { delay = "3ms", queue_packets = 50 }

[[transfers]]
from = "client"
to = "server"
bytes = "128K"

[[events]]
at = "50ms"
action = "partition"
a = ["server"]
b = ["client"]
one_way = true

[[events]]
at = "1s"
action = "heal"

[[events]]
at = "1.2s"
action = "hold"
host = "server"

[[events]]
at = "1.5s"
action = "release"
shuffle = true

[[events]]
at = "1.6s"
action = "set_link"
between = ["client", "server"]
delay = "8ms"
rate = "10Mbit"
burst_enter = 0.01
burst_leave = 0.3

[[events]]
at = "1.8s"
action = "link_down"
between = ["client", "server"]
direction = "ab"

[[events]]
at = "2.2s"
action = "link_up"
between = ["client", "server"]

[[rules]]
action = "delay"
protocol = "tcp"
flags = "F"
delay = "2s"
"""


def scenario(tmp_path: Path, text: str) -> str:
    path = tmp_path / "s.toml"
    path.write_text(text)
    return str(path)


def test_a_scenario_runs_and_replays_byte_for_byte(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = scenario(tmp_path, GOOD)
    assert main(["scenario", path, "--pcap-dir", str(tmp_path / "one")]) == 0
    out = capsys.readouterr().out
    assert "transfer client -> server:5001: closed" in out and "intact" in out
    assert main(["scenario", path, "--pcap-dir", str(tmp_path / "two")]) == 0
    for host in ("client", "server"):
        first = (tmp_path / "one" / f"{host}.pcap").read_bytes()
        assert len(first) > 100_000
        assert first == (tmp_path / "two" / f"{host}.pcap").read_bytes()


def test_a_crashed_server_fails_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = GOOD.replace('bytes = "128K"', 'bytes = "4M"').split("[[rules]]")[0] + (
        '\n[[events]]\nat = "300ms"\naction = "crash"\nhost = "server"\n'
        '\n[[events]]\nat = "2s"\naction = "restart"\nhost = "server"\n'
    )
    assert main(["scenario", scenario(tmp_path, text)]) == 1
    assert "transfer client -> server:5001: reset" in capsys.readouterr().out


LONELY = '[hosts.lonely]\naddress = "10.0.0.9/24"\n\n'
BAD = [
    (
        "a partition side that is not a list",
        GOOD.replace('b = ["client"]', 'b = "client"'),
        'b = "client"',
        "partition needs b",
    ),
    (
        "unknown key in back",
        GOOD.replace("queue_packets = 50", "queue_pakets = 50"),
        'back = { delay = "3ms", queue_pakets = 50 }',
        "unknown key 'queue_pakets'",
    ),
    ("syntax", "seed = 1\n[hosts.a\naddress = 1\n", "[hosts.a", "TOML syntax error"),
    (
        "unknown host",
        GOOD.replace('b = ["client"]', 'b = ["clinet"]'),
        'b = ["clinet"]',
        "unknown host 'clinet'",
    ),
    (
        "overlapping addresses",
        GOOD.replace('address = "10.0.0.2/24"', 'address = "10.0.0.1/24"'),
        'address = "10.0.0.1/24"',
        "already 'client''s",
    ),
    (
        "negative time",
        GOOD.replace('at = "1s"', 'at = "-1s"'),
        'at = "-1s"',
        "must not be negative",
    ),
    ("an unlinked host is fine", GOOD + "\n" + LONELY, None, ""),
    (
        "rule on a host pair with no path",
        GOOD.replace("[[rules]]", LONELY + '[[rules]]\nfrom = "lonely"\nto = "client"'),
        "[[rules]]",
        "rule matches nothing",
    ),
    (
        "flags on udp",
        GOOD.replace('protocol = "tcp"', 'protocol = "udp"'),
        "[[rules]]",
        "rule matches nothing",
    ),
    ("unknown key", GOOD.replace("qdisc", "qdisk"), 'qdisk = "codel"', "unknown key 'qdisk'"),
]


@pytest.mark.parametrize(("name", "text", "line", "message"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_file_is_one_line_with_file_and_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    text: str,
    line: str | None,
    message: str,
) -> None:
    """``line`` is the text of the line the error must name (its last occurrence)."""
    path = scenario(tmp_path, text)
    status = main(["scenario", path])
    err = capsys.readouterr().err
    if line is None:  # a good file after all
        assert status == 0 and err == ""
        return
    assert status == 2
    assert err.count("\n") == 1, err
    number = max(n for n, each in enumerate(text.splitlines(), 1) if each == line)
    assert err.startswith(f"simtcp sim scenario: error: {path}:{number}: "), err
    assert message in err, err


def test_a_rule_that_never_matched_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = GOOD + '\n[[rules]]\naction = "drop"\nprotocol = "tcp"\nport = 9999\n'
    path = scenario(tmp_path, text)
    assert main(["scenario", path]) == 2
    err = capsys.readouterr().err
    number = max(n for n, each in enumerate(text.splitlines(), 1) if each == "[[rules]]")
    assert err == f"simtcp sim scenario: error: {path}:{number}: rule matched no frame\n"


def test_the_module_docstring_example_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from simtcp.programs import scenario as module

    doc = module.__doc__ or ""
    example = doc[doc.index("    seed = 1") : doc.index("A bad file")]
    path = scenario(tmp_path, "\n".join(line[4:] for line in example.splitlines()))
    assert main(["scenario", path]) == 0
    assert "closed, 1048576 of 1048576 bytes sent" in capsys.readouterr().out


SWITCHED = """\
seed = 2
duration = "300s"

[hosts.a]
address = "10.0.0.1/24"

[hosts.b]
address = "10.0.0.2/24"

[hosts.c]
address = "10.0.0.3/24"

[switches.sw]

[[links]]
between = ["a", "sw"]
delay = "2ms"

[[links]]
between = ["sw", "b"]
delay = "2ms"
back = { delay = "4ms" }

[[links]]
between = ["c", "sw"]
delay = "1ms"
rate = "50Mbit"

[[transfers]]
from = "a"
to = "c"
bytes = "200K"

[[transfers]]
from = "b"
to = "c"
bytes = "200K"
port = 6000

[[events]]
at = "20ms"
action = "partition"
a = ["a"]
b = ["c"]

[[events]]
at = "3s"
action = "heal"
"""


def test_a_switched_scenario_partitions_one_pair_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["scenario", scenario(tmp_path, SWITCHED)]) == 0
    out = capsys.readouterr().out
    assert "transfer a -> c:5001: closed" in out and "transfer b -> c:6000: closed" in out
    assert "partitioned 0" not in out
