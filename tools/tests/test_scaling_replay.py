"""`scaling replay --trace` and the trace format: strict parsing with located errors (E301,
exit 2, no traceback), the report and its JSON, the plot."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aws_fixtures import run_cli
from nixecs.scaling.sim import Load
from nixecs.scaling.trace import format_trace, read_trace, write_trace

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FLEET = str(EXAMPLES / "fleet.yml")
TRACE = str(EXAMPLES / "load-trace.csv")
HEADER = "timestamp,AWS/ECS/CPUUtilization,running_tasks\n"


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "trace.csv"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("text", "line", "column", "words"),
    [
        ("", 1, 1, "empty trace"),
        ("time,AWS/ECS/CPUUtilization,running_tasks\n", 1, 1, "header must be"),
        ("timestamp,CPUUtilization,running_tasks\n", 1, 11, "Namespace/MetricName"),
        (HEADER, 2, 1, "no rows"),
        (HEADER + "2026-11-02T00:00:00Z,12,2,9\n", 2, 1, "4 cells"),
        (HEADER + "yesterday,12,2\n", 2, 1, "ISO 8601"),
        (HEADER + "2026-11-02T00:00:00,12,2\n", 2, 1, "time zone"),
        (HEADER + "2026-11-02T00:00:00Z,twelve,2\n", 2, 22, "not a number"),
        (HEADER + "2026-11-02T00:00:00Z,nan,2\n", 2, 22, "finite"),
        (HEADER + "2026-11-02T00:00:00Z,12,-1\n", 2, 25, "whole number"),
        (HEADER + "2026-11-02T00:00:00Z,12,2\n2026-11-02T00:00:30Z,12,2\n", 3, 1, "whole minutes"),
        (HEADER + "2026-11-02T00:01:00Z,12,2\n2026-11-02T00:00:00Z,12,2\n", 3, 1, "not after"),
        (
            HEADER
            + "2026-11-02T00:00:00Z,1,2\n2026-11-02T00:01:00Z,1,2\n2026-11-02T00:03:00Z,1,2\n",
            4,
            1,
            "evenly spaced",
        ),
    ],
)
def test_a_bad_trace_is_a_located_error(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
    line: int,
    column: int,
    words: str,
) -> None:
    path = write(tmp_path, text)
    result = run_cli(capsys, ["scaling", "replay", FLEET, "prod/bananas", "--trace", path])
    assert result.code == 2
    assert f"{path}:{line}:{column}: error[E301]" in result.err, result.err
    assert words in result.err
    assert "Traceback" not in result.err


def test_non_utf8_and_missing_files_are_located_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "trace.csv"
    path.write_bytes(HEADER.encode() + b"2026-11-02T00:00:00Z,\xff,2\n")
    result = run_cli(capsys, ["scaling", "replay", FLEET, "prod/bananas", "--trace", str(path)])
    assert result.code == 2 and f"{path}:2:1: error[E301]" in result.err
    gone = str(tmp_path / "nope.csv")
    result = run_cli(capsys, ["scaling", "replay", FLEET, "prod/bananas", "--trace", gone])
    assert result.code == 2 and f"{gone}:1:1: error[E301]" in result.err


def test_a_coarser_trace_stands_for_each_of_its_minutes(tmp_path: Path) -> None:
    text = HEADER + "2026-11-02T00:00:00Z,10,2\n2026-11-02T00:05:00Z,,3\n"
    load = read_trace(write(tmp_path, text))
    assert load.minutes == 10
    assert load.metrics["AWS/ECS/CPUUtilization"] == [10.0] * 5 + [None] * 5
    assert load.tasks == [2] * 5 + [3] * 5


def test_export_format_reads_back(tmp_path: Path) -> None:
    load = Load({"AWS/ECS/CPUUtilization": [1.5, None, 3.25]}, [2, None, 4], start=1793577600.0)
    path = tmp_path / "out.csv"
    write_trace(path, load)
    again = read_trace(path)
    assert again.metrics == load.metrics and again.tasks == load.tasks
    assert again.start == load.start
    assert format_trace(again) == path.read_text()


def test_replay_of_the_example_trace_reports_each_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plot = tmp_path / "replay.png"
    result = run_cli(
        capsys,
        [
            "--output",
            "json",
            "scaling",
            "replay",
            FLEET,
            "prod/reports",
            "--trace",
            TRACE,
            "--against",
            f"{EXAMPLES / 'blog.yml'}:blog/app",
            "--plot",
            str(plot),
        ],
    )
    assert result.code == 0, result.err
    data = result.json()
    proposed, article = data["sets"]
    assert proposed["policies"] == "proposed" and article["policies"] == "blog.yml blog/app"
    assert proposed["scale_ins"] > 0 and article["scale_ins"] == 0
    assert article["task_hours"] > proposed["task_hours"]
    for figures in data["sets"]:
        assert set(figures) >= {
            "scale_outs",
            "scale_ins",
            "minutes_above",
            "minutes_at_max",
            "task_hours",
            "largest_gap",
            "events",
        }
    assert data["from"] == "2026-11-02T00:00Z" and data["minutes"] == 3 * 1440
    assert plot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_text_report_says_what_was_replayed_as_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = tmp_path / "fleet.yml"
    fleet.write_text(
        (EXAMPLES / "fleet.yml")
        .read_text()
        .replace(
            "alarm: {metric: CPUUtilization, namespace: AWS/ECS, statistic: Average,\n"
            "                      period: 60,",
            "alarm: {metric: ApproximateNumberOfMessagesVisible, namespace: AWS/SQS, "
            "dimensions: {QueueName: reports}, statistic: Average,\n                      period: 60,",
        )
    )
    result = run_cli(capsys, ["scaling", "replay", str(fleet), "prod/reports", "--trace", TRACE])
    assert result.code == 0, result.err
    assert "AWS/SQS/ApproximateNumberOfMessagesVisible" in result.out
    assert "the load has no AWS/SQS/ApproximateNumberOfMessagesVisible" in result.out


def test_replay_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli(capsys, ["scaling", "replay", FLEET, "prod/nope", "--trace", TRACE])
    assert result.code == 2
    result = run_cli(
        capsys, ["scaling", "replay", FLEET, "prod/bananas", "--trace", TRACE, "--since", "3d"]
    )
    assert result.code == 2
    result = run_cli(capsys, ["scaling", "replay", FLEET, "prod/bananas", "--against", "nonsense"])
    assert result.code == 2


def test_get_metric_data_pages_are_followed_with_next_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """moto answers in one page, so botocore's Stubber stands in for CloudWatch's paging
    here: the second page (after NextToken) must land in the series too."""
    # Credentials of its own: without them botocore would look for some (IMDS) on the network.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    from datetime import UTC, datetime

    from botocore.stub import ANY, Stubber

    from nixecs.aws import metrics
    from nixecs.aws.session import Session

    session = Session(region="us-east-1")
    client = session.client("cloudwatch")
    start = 1_793_577_600.0
    query = metrics.Query("AWS/ECS/CPUUtilization", "AWS/ECS", "CPUUtilization", ())
    request = {
        "MetricDataQueries": ANY,
        "StartTime": ANY,
        "EndTime": ANY,
        "ScanBy": "TimestampAscending",
    }
    with Stubber(client) as stub:
        stub.add_response(
            "get_metric_data",
            {
                "MetricDataResults": [
                    {
                        "Id": "m0",
                        "Timestamps": [datetime.fromtimestamp(start, UTC)],
                        "Values": [10.0],
                    }
                ],
                "NextToken": "page-2",
            },
            request,
        )
        stub.add_response(
            "get_metric_data",
            {
                "MetricDataResults": [
                    {
                        "Id": "m0",
                        "Timestamps": [datetime.fromtimestamp(start + 120, UTC)],
                        "Values": [30.0],
                    }
                ]
            },
            {**request, "NextToken": "page-2"},
        )
        found = metrics.fetch(session, [query], start, start + 180, 60)
        stub.assert_no_pending_responses()
    assert found["AWS/ECS/CPUUtilization"] == [10.0, None, 30.0]


cells = st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(cells, st.one_of(st.none(), st.integers(0, 999999))), min_size=1, max_size=50
    ),
    st.integers(0, 2_000_000_000 // 60),
)
def test_any_trace_written_reads_back(
    rows: list[tuple[float | None, int | None]], minute: int
) -> None:
    import tempfile

    load = Load(
        {"AWS/ECS/CPUUtilization": [v for v, _ in rows]}, [t for _, t in rows], start=minute * 60.0
    )
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "t.csv"
        write_trace(path, load)
        again = read_trace(path)
    assert again.tasks == load.tasks and again.start == load.start
    for written, read in zip(
        load.metrics["AWS/ECS/CPUUtilization"], again.metrics["AWS/ECS/CPUUtilization"], strict=True
    ):
        assert (written is None) == (read is None)
        if written is not None and read is not None:
            assert read == pytest.approx(written, rel=1e-5, abs=1e-9)


def test_replay_of_a_service_tracking_requests_per_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """examples/fleet.yml's bananas tracks ALBRequestCountPerTarget: replayed from the
    AWS/ApplicationELB RequestCountPerTarget column, as demand over running tasks (it was an
    internal error before)."""
    rows = "".join(f"2026-11-02T00:{m:02d}:00Z,900,2\n" for m in range(10))
    path = write(
        tmp_path, "timestamp,AWS/ApplicationELB/RequestCountPerTarget,running_tasks\n" + rows
    )
    result = run_cli(capsys, ["scaling", "replay", FLEET, "prod/bananas", "--trace", path])
    assert result.code == 0, result.err
    assert "RequestCountPerTarget" in result.out and "scale-outs" in result.out
