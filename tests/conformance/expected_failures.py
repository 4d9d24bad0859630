"""Known conformance failures: case id -> the first reason the runner reported (generated).

A case listed here is ``xfail(strict=True)``: if it starts passing, the test run fails until the
entry is removed. Regenerate with:

    python3 bench/conformance.py --expected-failures > tests/conformance/expected_failures.py
"""

EXPECTED_FAILURES: dict[str, str] = {
    "retry-new-execution-flow-attempts.yml": (
        "deploy refused: retry-new-execution-flow-attempts.yml: retry.behavior: retry "
        "behavior CREATE_NEW_EXECUTION is not supported yet — use 'behavior: "
        "RETRY_FAILED..."
    ),
    "retry-new-execution-flow-duration.yml": (
        "deploy refused: retry-new-execution-flow-duration.yml: retry.behavior: retry "
        "behavior CREATE_NEW_EXECUTION is not supported yet — use 'behavior: "
        "RETRY_FAILED..."
    ),
    "retry-new-execution-task-attempts.yml": (
        "deploy refused: retry-new-execution-task-attempts.yml: tasks[0].retry.behavior: "
        "retry behavior CREATE_NEW_EXECUTION is not supported yet — use 'behavior: RET..."
    ),
    "retry-new-execution-task-duration.yml": (
        "deploy refused: retry-new-execution-task-duration.yml: tasks[0].retry.behavior: "
        "retry behavior CREATE_NEW_EXECUTION is not supported yet — use 'behavior: RET..."
    ),
    "variables-invalid.yaml": (
        "note \"its log contains 'Unable to find `inputs` used in the expression "
        "`{{inputs.invalid}}`'\": taskrun index 1 FAILED log contains 'Unable to find "
        "`inputs` u..."
    ),
}
