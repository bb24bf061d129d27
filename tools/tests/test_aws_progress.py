"""Progress on stderr: plain lines (CI logs) only when something moved, a rich bar on a
terminal."""

from __future__ import annotations

import io

from nixecs.aws.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_when_the_percentage_moves_or_the_status_changes():
    stream = io.StringIO()
    with Progress("upload disk.vhd", total=1000, stream=stream) as progress:
        for done in range(0, 1001, 10):  # 101 updates
            progress.update(done)
        progress.update(status="done")
        progress.update(status="done")
        progress.log("a line of its own")
    lines = stream.getvalue().splitlines()
    assert lines[0] == "upload disk.vhd 0%"
    assert [line for line in lines if line.endswith("%")][1:4] == [
        "upload disk.vhd 10%",
        "upload disk.vhd 20%",
        "upload disk.vhd 30%",
    ]
    assert len(lines) == 13  # 0..100 in steps of 10, one status line, one log line
    assert lines[-2:] == ["upload disk.vhd 100% (done)", "a line of its own"]


def test_unknown_totals_print_status_changes_only():
    stream = io.StringIO()
    with Progress("AMI ami-1", stream=stream) as progress:
        for state in ("pending", "pending", "pending", "available"):
            progress.update(status=state)
    assert stream.getvalue().splitlines() == [
        "AMI ami-1",
        "AMI ami-1 (pending)",
        "AMI ami-1 (available)",
    ]


def test_a_terminal_gets_a_rich_bar():
    stream = Terminal()
    with Progress("import-snapshot import-snap-1", total=100, stream=stream) as progress:
        progress.update(40, status="converting")
        progress.log("event line")
        progress.update(100, status="completed")
    text = stream.getvalue()
    assert "import-snapshot import-snap-1" in text and "completed" in text and "event line" in text
    assert "\x1b[" in text  # drawn with terminal control sequences, not plain lines
