"""The mutation-testing plumbing of the test session (`make mutation`, mutmut 3): which mutant runs, the
cost of each test with its fixtures' set-up, and the order and choice of tests under mutmut."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from utils.io import atomic_write_text


def under_mutmut() -> str | None:
    """The mutant under test when mutmut runs this session ("" for its clean and stats runs), else None."""
    if "mutmut" not in sys.modules:
        return None
    from mutmut.mutation.trampoline import get_mutant_under_test

    return get_mutant_under_test()


COSTS = Path(".test-data") / "costs.json"  # under mutmut: seconds per test, its fixtures' set-up included


def saved_costs() -> dict[str, float]:
    """The costs COSTS holds (none before the first unmutated run)."""
    return json.loads(COSTS.read_text()) if COSTS.is_file() else {}


def unmutated_mutmut_run() -> bool:
    """True in mutmut's own runs of the unmutated code (its clean and stats runs)."""
    return under_mutmut() in ("", "stats")


class CostRecorder:
    """Under mutmut's unmutated runs: each test's cost with its fixtures' set-up (a module fixture that trains a
    run costs its tests seconds that mutmut's own record, the call alone, leaves out), saved to COSTS."""

    def __init__(self) -> None:
        self.fixture_seconds: dict[str, float] = {}
        self.call_seconds: dict[str, float] = {}
        self.fixtures_of: dict[str, list[str]] = {}

    @pytest.hookimpl(hookwrapper=True)
    def pytest_fixture_setup(self, fixturedef, request):
        start = time.perf_counter()
        yield
        name = fixturedef.argname
        self.fixture_seconds[name] = max(self.fixture_seconds.get(name, 0.0), time.perf_counter() - start)

    def pytest_runtest_logreport(self, report):
        if report.when == "call":
            self.call_seconds[report.nodeid] = report.duration

    def pytest_collection_finish(self, session):
        self.fixtures_of = {item.nodeid: list(getattr(item, "fixturenames", [])) for item in session.items}

    def pytest_sessionfinish(self, session):
        if not self.call_seconds:
            return
        costs = {nodeid: self.call_seconds.get(nodeid, 0.0) + sum(self.fixture_seconds.get(f, 0.0) for f in names)
                 for nodeid, names in self.fixtures_of.items()}
        # merged: mutmut's stats run after new tests runs those alone, and must not forget the others' costs
        atomic_write_text(COSTS, json.dumps({**saved_costs(), **costs}))


def pytest_configure(config):
    """Record each test's cost in mutmut's unmutated runs (a pytest hook, imported by tests/conftest.py)."""
    if unmutated_mutmut_run():
        config.pluginmanager.register(CostRecorder(), "mutmut-test-costs")


def recorded_costs() -> dict[str, float]:
    """Seconds per test under mutmut: from its unmutated runs (fixtures' set-up included), else mutmut's own
    record of the call alone."""
    return {**json.loads(Path("mutmut-stats.json").read_text()).get("duration_by_test", {}), **saved_costs()}


def order_for_mutation(config, items) -> None:
    """Under mutmut (which stops at the first failure) the cheapest tests (`recorded_costs`) go first; with
    MUTATION_MAX_TEST_SECONDS set only those that took at most that long (a first, cheap pass: its survivors
    are then re-run by name without it, see docs/mutation.md), and with MUTATION_TESTS (comma-separated parts
    of test ids) only the tests it names (a mutant they kill is killed by the fast suite too)."""
    if under_mutmut() and Path("mutmut-stats.json").is_file():
        recorded = recorded_costs()
        durations = {item.nodeid: recorded.get(item.nodeid, float("inf")) for item in items}  # unknown: last
        items.sort(key=lambda item: durations[item.nodeid])
        limit = float(os.environ.get("MUTATION_MAX_TEST_SECONDS") or "inf")
        only = [part for part in os.environ.get("MUTATION_TESTS", "").split(",") if part]
        if not unmutated_mutmut_run() and (limit < float("inf") or only):
            kept, left_out = [], []
            for item in items:
                chosen = durations[item.nodeid] <= limit and (not only or any(o in item.nodeid for o in only))
                (kept if chosen else left_out).append(item)
            config.hook.pytest_deselected(items=left_out)
            items[:] = kept
