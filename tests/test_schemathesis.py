"""schemathesis against the live OpenAPI schema of a real `hikitsugi serve`, with a valid
(admin) key: every operation, a bounded number of generated requests each — valid
(positive) and invalid (negative) ones — and no server error, no undocumented status
code, no response that breaks its documented schema, headers or content type.

The operations are driven one by one with hypothesis directly (schemathesis' own pytest
plugin does not load under pytest 9), so the counts below are exact.
"""

from __future__ import annotations

import os
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.slow
EXAMPLES = int(os.environ.get("HIKITSUGI_SCHEMATHESIS_EXAMPLES", "30"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]


def test_api_conforms_to_its_schema(server, api_keys):
    schema = schemathesis.openapi.from_url(server + "/openapi.json")
    headers = {"X-API-Key": api_keys["admin"]}
    calls: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    failures = []
    operations = [r.ok() for r in schema.get_all_operations()]
    for op in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            @given(case=op.as_strategy(generation_mode=mode))
            def run(case):
                calls[op.label] += 1
                response = case.call_and_validate(headers=headers, checks=CHECKS, timeout=60)
                statuses[response.status_code] += 1

            try:
                run()
            except Unsatisfiable:  # no invalid request exists (e.g. GET /healthz has no inputs)
                pass
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect every operation's failure, then report
                failures.append(f"{op.label} ({mode.value}): {exc}")
    print(f"schemathesis: {len(operations)} operations, {sum(calls.values())} requests, statuses {dict(statuses)}")
    assert len(operations) >= 5
    assert not failures, "\n\n".join(failures)
    assert not any(code >= 500 for code in statuses)
