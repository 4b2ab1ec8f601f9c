"""The schema layer's rules: schemathesis' built-in checks, each under a kit rule name.

The checks themselves are schemathesis' (``schemathesis.checks.CHECKS``); this module
only names them, without importing schemathesis, so listing the rules stays cheap.
"""

from __future__ import annotations

from kontext_mock.contracts.rules import Rule, add, schema_rule_name

__all__ = ["OFF", "SCHEMA_CHECKS"]

#: schemathesis checks the kit turns off, and why
OFF = {
    # Its one DELETE, revoke-all, deletes nothing: the sessions stay readable, disconnected
    # (documented); schemathesis would take every later read of them for a use after free.
    # What revoke-all must do is the revoke-* rules' business.
    "use_after_free": "revoke-all, the only DELETE, deletes no resource",
}
#: schemathesis check -> what it asserts
SCHEMA_CHECKS = {
    "not_a_server_error": "no operation answers 5xx",
    "status_code_conformance": "every status code is one the operation documents",
    "content_type_conformance": "every content type is one the operation documents",
    "response_schema_conformance": "every body matches the documented schema",
    "response_headers_conformance": "every documented header is present and valid",
    "positive_data_acceptance": "valid requests are accepted",
    "negative_data_rejection": "invalid requests are rejected with 4xx",
    "ignored_auth": "operations that need a token reject requests without a valid one",
    "missing_required_header": "a missing required header is rejected",
    "unsupported_method": "undocumented methods answer 405",
    "ensure_resource_availability": "a created resource can be read back",
    "allow_header_conformance": "405 answers carry a correct Allow header",
    "object_level_authorization": "one identity cannot read objects another created",
}

for _check, _summary in SCHEMA_CHECKS.items():
    add(Rule(schema_rule_name(_check), "schema", _summary, kind="schemathesis", check=_check,
             module=__name__))
