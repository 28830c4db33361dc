"""``simtcp drill`` as a user meets it: one-line usage errors, per-script results, reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simtcp.programs.drill import main

GOOD = """\
0     socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0    bind(3, ..., ...) = 0
+0    listen(3, 1) = 0
+0    < S 0:0(0) win 65535 <mss 1460>
+0    > S. 0:0(0) ack 1 <mss 1460>
"""
SKIPPED = "--ip_version=ipv6\n--mtu=1000\n" + GOOD  # IPv6 needs 1280
FAILING = GOOD.replace("> S. 0:0(0) ack 1", "> S. 0:0(0) ack 2")


def _write(directory: Path, name: str, text: str | bytes) -> Path:
    path = directory / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--tolerance-usecs", "-5", "x.pkt"], "must not be negative"),
        (["--tolerance-usecs", "soon", "x.pkt"], "not an integer"),
        (["--seed", "x", "x.pkt"], "not an integer"),
        (["--report", "out.txt", "x.pkt"], "FILE.md or FILE.json"),
        (["-D", "1BAD", "x.pkt"], "not a symbol name"),
        (["/nonexistent/script.pkt"], "no such file"),
        ([], "required"),
        (["--bogus", "x.pkt"], "unrecognized arguments"),
    ],
)
def test_bad_invocations_are_one_line_and_exit_2(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("simtcp drill: error: "), err
    assert needle in err and "Traceback" not in err


def test_a_directory_runs_every_script_even_past_malformed_and_binary_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(tmp_path, "a-good.pkt", GOOD)
    _write(tmp_path, "b-malformed.pkt", GOOD + "+0 > Q 0:0(0)\n")
    _write(tmp_path, "c-binary.pkt", b"\x7fELF\x02\x01\x01\x00\xff\xfe\x00" * 20)
    sub = tmp_path / "sub"
    sub.mkdir()
    _write(sub, "d-good.pkt", GOOD)
    assert main([str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert out.count("PASS ") == 2 and out.count("FAIL ") == 2
    assert "b-malformed.pkt:6: syntax error" in out
    assert "c-binary.pkt:1: syntax error: not a UTF-8 text file" in out
    assert "2 passed, 2 failed, 0 skipped" in out and "Traceback" not in out


def test_skips_fail_the_exit_status_only_with_strict(tmp_path: Path) -> None:
    path = _write(tmp_path, "ipv6.pkt", SKIPPED)
    assert main([str(path)]) == 0
    assert main(["--strict", str(path)]) == 1


def test_unknown_own_options_and_bad_values_fail_the_script(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = _write(tmp_path, "typo.pkt", "--simtcp_nodelya=true\n" + GOOD)
    assert main([str(typo)]) == 1
    assert "TcpConfig has no field 'nodelya'" in capsys.readouterr().out
    boolean = _write(tmp_path, "bool.pkt", "--simtcp_nodelay=maybe\n" + GOOD)
    assert main([str(boolean)]) == 1
    out = capsys.readouterr().out
    assert "not a boolean: 'maybe'" in out and "duration" not in out


def test_defines_reach_ifdef_blocks(tmp_path: Path) -> None:
    script = _write(tmp_path, "ifdef.pkt", GOOD + "#ifdef BREAK\n+0 > R 0:0(0)\n#endif\n")
    assert main([str(script)]) == 0
    assert main(["-D", "BREAK", str(script)]) == 1


def test_reports_give_results_and_totals_by_reason(tmp_path: Path) -> None:
    for name, text in (("good", GOOD), ("skip", SKIPPED), ("fail", FAILING)):
        _write(tmp_path, f"{name}.pkt", text)
    _write(tmp_path, "shell.pkt", "`tc qdisc add dev tun0 root netem`\n" + GOOD)
    json_path, md_path = tmp_path / "r.json", tmp_path / "r.md"
    assert main(["-q", "--report", str(json_path), str(tmp_path)]) == 1
    report = json.loads(json_path.read_text())
    assert report["totals"] == {"passed": 1, "failed": 1, "skipped": 2}
    assert report["by_reason"]["skipped"] == {
        "IPv4 only: link MTU below IPv6's 1280": 1,
        "shell command not run: tc": 1,
    }
    failed = next(entry for entry in report["scripts"] if entry["status"] == "failed")
    assert failed["expected"] == "0.000000 > S. 0:0(0) ack 2 <mss 1460>"
    assert failed["actual"].startswith("0.000000 > S. 0:0(0) ack 1")
    assert main(["-q", "--report", str(md_path), str(tmp_path)]) == 1
    markdown = md_path.read_text()
    assert (
        "## Skipped by reason" in markdown
        and "| 1 | IPv4 only: link MTU below IPv6's 1280 |" in markdown
    )
    assert "expected: `0.000000 > S. 0:0(0) ack 2 <mss 1460>`" in markdown
