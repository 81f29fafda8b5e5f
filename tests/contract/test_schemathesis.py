"""schemathesis against /openapi.json of a running service: no 500, every answer as documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.contract.conftest import served  # noqa: F401 (the fixture)

pytestmark = pytest.mark.slow

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "unsupported_method",
        "missing_required_header",
        "ignored_auth",
    ]
)


def test_generated_requests_find_no_500_and_no_answer_outside_the_spec(served: str, tmp_path: Path) -> None:  # noqa: F811
    """Every operation, positive and negative data: the schemathesis CLI exits 0."""
    st = Path(sys.executable).parent / "st"
    done = subprocess.run(
        [
            str(st),
            "run",
            f"{served}/openapi.json",
            "--checks",
            CHECKS,
            "--max-examples",
            "25",
            "--seed",
            "20261204",
            "--no-color",
            "--workers",
            "1",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
