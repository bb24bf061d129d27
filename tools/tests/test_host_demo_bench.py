"""`make demo`'s simulated boot and `make bench`'s apply benchmark work (not how fast)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from host_fixtures import settings_userdata

TOOLS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOOLS))

from bench_host import bench_apply  # noqa: E402
from demo_host import simulate_boot  # noqa: E402


def test_simulated_boot_returns_the_agent_environment(tmp_path: Path) -> None:
    userdata = tmp_path / "web.userdata"
    userdata.write_bytes(settings_userdata(cluster="demo"))
    env = simulate_boot(userdata, tmp_path / "sim", sys.executable)
    assert "ECS_CLUSTER=demo\n" in env
    assert env == (tmp_path / "sim/run/nixecs/ecs.env").read_text()


def test_simulated_boot_explains_a_failure(tmp_path: Path) -> None:
    userdata = tmp_path / "bad.userdata"
    userdata.write_bytes(b"not userdata at all\n")
    with pytest.raises(RuntimeError, match=r"exited 2: .*unknown userdata format"):
        simulate_boot(userdata, tmp_path / "sim", sys.executable)


def test_bench_apply_reports_every_figure() -> None:
    result = bench_apply(sys.executable, runs=3)
    assert set(result) >= {"median_ms", "p90_ms", "peak_rss_mb", "python_startup_median_ms"}
    assert 0 < result["median_ms"] <= result["p90_ms"]
    assert 1 < result["peak_rss_mb"] < 1000
