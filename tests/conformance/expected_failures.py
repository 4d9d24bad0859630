"""Known conformance failures: case id -> the first reason the runner reported (generated).

A case listed here is ``xfail(strict=True)``: if it starts passing, the test run fails until the
entry is removed. Regenerate with:

    python3 bench/conformance.py --expected-failures > tests/conformance/expected_failures.py
"""

EXPECTED_FAILURES: dict[str, str] = {
    "variables-invalid.yaml": (
        "note \"its log contains 'Unable to find `inputs` used in the expression "
        "`{{inputs.invalid}}`'\": taskrun index 1 FAILED log contains 'Unable to find "
        "`inputs` u..."
    ),
}
