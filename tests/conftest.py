"""Shared pytest set-up: the ``cuda`` marker that auto-skips without a GPU, and the ``--require-native`` switch.

With ``--require-native`` (or ``CLLSTR_REQUIRE_NATIVE=1``; ``make test`` and CI pass it) a missing native library,
DALI, DALI plugin or font is a failure, not a skip: every skip other than "needs a CUDA device" fails the test.
"""

from __future__ import annotations

import os

import pytest
import torch

from tests import common

CUDA_SKIP_REASON = "needs a CUDA device"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--require-native",
        action="store_true",
        default=False,
        help="fail (instead of skip) when the native ops, DALI, its plugin or the fonts are missing; only a missing "
        "GPU may skip (also CLLSTR_REQUIRE_NATIVE=1)",
    )


def pytest_configure(config: pytest.Config) -> None:
    common.REQUIRE_NATIVE = bool(config.getoption("--require-native")) or os.environ.get(
        "CLLSTR_REQUIRE_NATIVE", "0"
    ) not in ("", "0")


def pytest_report_header(config: pytest.Config) -> str:
    return f"cllstr: require native = {common.REQUIRE_NATIVE}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason=CUDA_SKIP_REASON)
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if common.REQUIRE_NATIVE and report.skipped and not _is_gpu_skip(report):
        report.outcome = "failed"
        report.longrepr = f"skipped under --require-native (only a missing GPU may skip): {_skip_reason(report)}"
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    report = yield
    if common.REQUIRE_NATIVE and report.skipped:  # a module-level skip (importorskip) of a whole test file
        report.outcome = "failed"
        report.longrepr = f"module skipped under --require-native: {_skip_reason(report)}"
    return report


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    return str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)


def _is_gpu_skip(report: pytest.TestReport) -> bool:
    return _skip_reason(report).removeprefix("Skipped: ") == CUDA_SKIP_REASON
