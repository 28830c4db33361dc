"""The packetdrill corpus: every ``*.pkt`` here runs against the stack in virtual time.

One test id per script (its file name). A script whose first lines carry
``// xfail: <reason>`` documents a known disagreement between the engine and
the RFC it cites: it is an expected failure (not strict, so a fix shows up as
XPASS). Each script also runs a second time with the remote's ISN just below
2**32 and another seed, so that sequence numbers wrap inside the script, and
over IPv6 and IPv4-mapped IPv6 (``--ip_version``): ``// ipv4-only: <reason>``
skips the IPv6 run of a script about IPv4 alone, ``// ipv6-xfail: <reason>``
marks a known IPv6 disagreement.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from simtcp.drill import load_script, parse_script, run_parsed
from simtcp.drill.report import format_result

HERE = Path(__file__).parent
SCRIPTS = sorted(HERE.glob("*.pkt"))
WRAP_ISN = 2**32 - 100


def _params(variant: str) -> list[object]:
    params = []
    for path in SCRIPTS:
        script = load_script(path)
        reason = script.directive("xfail")
        if variant == "ipv6":
            reason = reason or script.directive("ipv6-xfail")
        marks = [pytest.mark.xfail(reason=reason, strict=False)] if reason else []
        name = path.stem if variant == "plain" else f"{path.stem}@{variant}"
        params.append(pytest.param(path, id=name, marks=marks))
    return params


def test_corpus_is_large_enough() -> None:
    assert len(SCRIPTS) >= 80
    areas = {path.name.split("-", 1)[0] for path in SCRIPTS}
    assert {"rfc9293", "rfc5961", "rfc6298", "rfc5681", "rfc1122", "rfc896"} <= areas


@pytest.mark.parametrize("path", _params("plain"))
def test_scenario(path: Path) -> None:
    result = run_parsed(load_script(path))
    assert result.status == "passed", format_result(result)


@pytest.mark.parametrize("path", _params("wrap"))
def test_scenario_across_the_wrap(path: Path) -> None:
    result = run_parsed(load_script(path), remote_isn=WRAP_ISN, seed=7)
    assert result.status == "passed", format_result(result)


@pytest.mark.parametrize("path", _params("ipv6"))
def test_scenario_over_ipv6(path: Path) -> None:
    result = run_parsed(load_script(path), ip_version="ipv6")
    if result.status == "skipped" and (result.skip_reason or "").startswith("IPv4 only"):
        pytest.skip(result.skip_reason)
    assert result.status == "passed", format_result(result)


@pytest.mark.parametrize("path", _params("mapped"))
def test_scenario_over_ipv4_mapped_ipv6(path: Path) -> None:
    result = run_parsed(load_script(path), ip_version="ipv4-mapped-ipv6")
    assert result.status == "passed", format_result(result)


def _mutants(text: str) -> list[str]:
    """The script with one outbound line's ack (or sequence) number off by one, per line."""
    lines = text.split("\n")
    mutants = []
    for index, line in enumerate(lines):
        if not re.match(r"^\S+\s+>", line):
            continue
        match = re.search(r"ack (\d+)", line)
        if match is not None:
            changed = line[: match.start(1)] + str(int(match.group(1)) + 1) + line[match.end(1) :]
        else:
            changed = re.sub(
                r" (\d+):(\d+)\(", lambda seq: f" {int(seq[1]) + 1}:{int(seq[2]) + 1}(", line
            )
        mutants.append("\n".join(lines[:index] + [changed] + lines[index + 1 :]))
    return mutants


def test_every_expected_segment_is_checked() -> None:
    """Each script must fail when any one of its outbound lines is changed."""
    survivors = []
    for path in SCRIPTS:
        text = path.read_text(encoding="utf-8")
        if load_script(path).directive("xfail"):
            continue
        for number, mutant in enumerate(_mutants(text)):
            if run_parsed(parse_script(mutant, path.name)).status != "failed":
                survivors.append(f"{path.name} mutant {number}")
    assert survivors == []
