"""Each fault of the matrix once, short: nothing lost, nothing applied twice, every outcome recorded, the
trainer state true afterwards (benchmarks/faults.py runs the same scenarios at full length, with timings).

Each test trains the tiny model in a process of its own against a private local stack (some faults
take the stack's database or front down), so these need the local stack.
"""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

from liveparams_stack import LocalStack
from liveparams_stack.keys import ANON_KEY
from liveparams_stack.users import create_user

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from faults import FAULTS, QUICK_AGENT, Context, Sizes, print_table, run_fault

pytestmark = [pytest.mark.faults, pytest.mark.slow]

ANON = {"apikey": ANON_KEY}

SHORT = Sizes(
    fault_s=3.0,
    partition_s=4.0,
    per_phase=1,
    settle_s=60.0,
    step_s=0.02,
    flood_requests=60,
    flood_jobs=3,
    flood_trainers=2,
    flood_s=2.0,
    agent=QUICK_AGENT,
)


def test_the_first_requests_after_a_database_restart_succeed(private_stack: LocalStack) -> None:
    """Every connection the front held died with the restart; none may fail a request on its way out."""
    create_user(private_stack.api_url)  # the Auth and REST pools hold connections now
    private_stack.restart_database()
    for _ in range(3):  # more than each pool's idle connections
        create_user(private_stack.api_url)  # Auth
        response = httpx.post(f"{private_stack.api_url}/rest/v1/rpc/liveparams_parameter_spec", json={}, headers=ANON)
        assert response.status_code == 200, response.text  # REST


@pytest.mark.parametrize("fault", FAULTS)
def test_the_fault_loses_nothing_and_applies_nothing_twice(
    fault: str, private_stack: LocalStack, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    tmp_path.chmod(0o755)
    short_url = request.getfixturevalue("short_env")["API_URL"] if fault == "expiry" else None
    context = Context(private_stack, private_stack.api_url, SHORT, tmp_path, short_api_url=short_url)
    result = run_fault(fault, context)
    print_table(result)
    assert result.failures == []
    assert result.lost == 0 and result.duplicates == 0 and result.crossed == 0
    pending = sum(phase["pending"] for phase in result.phases.values())
    assert pending == result.expected_pending, result.phases
    assert result.state in result.expected_state.split("|")
