"""The share of file descriptors incoming connections may hold (exporter.fd_budget), checked in child
processes with limits set for them, so this test process keeps its own."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT

pytest.importorskip("resource")

PROBE = """
import json, resource, sys
soft, hard = int(sys.argv[1]), int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
from exporter.fd_budget import inbound_connection_cap, open_file_limit, raise_open_file_limit
before = inbound_connection_cap(100)
raise_open_file_limit()
print(json.dumps({"before": before, "limit": open_file_limit(), "after": inbound_connection_cap(100)}))
"""


def in_child(soft: int, hard: int) -> dict:
    result = subprocess.run([sys.executable, "-c", PROBE, str(soft), str(hard)], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=60, check=True)
    return json.loads(result.stdout)


def current_hard_limit() -> int:
    import resource

    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


@pytest.mark.parametrize("soft, cap", [(256, 64), (400, 100), (1024, 100), (64, 16), (8, 4)])
def test_incoming_connections_get_at_most_a_quarter_of_the_limit(soft, cap):
    assert in_child(soft, soft) == {"before": cap, "limit": soft, "after": cap}  # soft == hard: nothing to raise


def test_the_soft_limit_is_raised_to_the_hard_one_first():
    hard = min(current_hard_limit(), 4096)
    if hard < 512:
        pytest.skip("the hard limit here is too low to show a raise")
    assert in_child(256, hard) == {"before": 64, "limit": hard, "after": min(100, hard // 4)}
