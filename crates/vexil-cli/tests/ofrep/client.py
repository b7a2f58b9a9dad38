"""A real OpenFeature client evaluating flags on a vexil server over OFREP.

Usage: client.py BASE_URL API_KEY
       (or VEXIL_OFREP_URL and VEXIL_OFREP_KEY in the environment)

It uses the OpenFeature Python SDK with the OFREP provider, both from PyPI and unchanged, so
what it sees is what any application using them sees. The key goes in the `X-API-Key` header,
as OFREP clients send it. It evaluates a fixed set of cases against flags the caller has
created (see the Rust test `ofrep_client.rs`) and prints one JSON object: case name ->
{flag_key, value, variant, reason, error_code, error_message}.
"""

import json
import os
import sys

from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext


def plain(value):
    """An enum member (reasons and error codes are string enums) as its string value."""
    if value is None:
        return None
    return getattr(value, "value", value)


def main(argv):
    if len(argv) == 3:
        base_url, api_key = argv[1], argv[2]
    elif len(argv) == 1 and os.environ.get("VEXIL_OFREP_URL") and os.environ.get("VEXIL_OFREP_KEY"):
        base_url, api_key = os.environ["VEXIL_OFREP_URL"], os.environ["VEXIL_OFREP_KEY"]
    else:
        print(
            "usage: client.py BASE_URL API_KEY (or set VEXIL_OFREP_URL and VEXIL_OFREP_KEY)",
            file=sys.stderr,
        )
        return 2

    provider = OFREPProvider(base_url, headers_factory=lambda: {"X-API-Key": api_key})
    api.set_provider_and_wait(provider)
    client = api.get_client()

    def ctx(targeting_key=None, **attributes):
        return EvaluationContext(targeting_key=targeting_key, attributes=attributes)

    # name -> (the client method, flag key, the caller's default, evaluation context)
    cases = {
        "boolean": (client.get_boolean_details, "ofrep_bool", False, ctx("user-1")),
        "string": (client.get_string_details, "ofrep_string", "default", ctx("user-1")),
        "integer": (client.get_integer_details, "ofrep_int", -1, ctx("user-1")),
        "float": (client.get_float_details, "ofrep_float", -1.0, ctx("user-1")),
        "object": (client.get_object_details, "ofrep_object", {"default": True}, ctx("user-1")),
        "targeting_match": (
            client.get_boolean_details,
            "ofrep_targeting",
            False,
            ctx("user-1", plan="enterprise", country="DE"),
        ),
        "targeting_miss": (
            client.get_boolean_details,
            "ofrep_targeting",
            True,
            ctx("user-1", plan="free", country="DE"),
        ),
        "rollout_in": (client.get_boolean_details, "new_checkout", False, ctx("user-1")),
        "rollout_out": (client.get_boolean_details, "new_checkout", True, ctx("user-2")),
        "unknown": (client.get_string_details, "ofrep_missing", "fallback", ctx("user-1")),
        "disabled": (client.get_string_details, "ofrep_disabled", "default", ctx("user-1")),
        "prerequisite_failed": (client.get_boolean_details, "ofrep_dependent", True, ctx("user-1")),
        "type_mismatch": (client.get_boolean_details, "ofrep_string", True, ctx("user-1")),
        "no_context": (client.get_boolean_details, "ofrep_bool", False, None),
    }

    results = {}
    for name, (method, flag_key, default, context) in cases.items():
        details = method(flag_key, default, context)
        results[name] = {
            "flag_key": details.flag_key,
            "value": details.value,
            "variant": details.variant,
            "reason": plain(details.reason),
            "error_code": plain(details.error_code),
            "error_message": details.error_message,
        }
    api.shutdown()
    json.dump(results, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
