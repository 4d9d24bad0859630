"""Known conformance failures: case id -> why the engine differs from Kestra there, and what it found.

A case listed here is ``xfail(strict=True)``: if it starts passing, the test run fails until the
entry is removed. ``python3 bench/conformance.py --expected-failures`` prints the failing cases with
the first reason the runner reported; each entry here says the cause.
"""

_VALUE_PATH = (
    "the children of a flowable (Switch, Sequential, WorkingDirectory) inside a loop carry the loop's "
    "value here, so a taskrun's value path (Kestra's findParentsValues) repeats it: "
)

EXPECTED_FAILURES: dict[str, str] = {
    "each-switch.yaml": _VALUE_PATH + "['b', 'b', '1', '1'] where Kestra has ['b', '1']",
    "working-directory-taskrun.yml": _VALUE_PATH + "['1', '1'] where Kestra has ['1']",
    "working-directory-taskrun-nested.yml": _VALUE_PATH + "['1', '1', '1'] where Kestra has ['1']",
    "secrets.yaml": (
        "a secret() value is masked in task outputs by design (issue #12: a secret appears nowhere a "
        "user or the API can read it); Kestra's SecretFunctionTest reads it in a Return's output"
    ),
    "variables-invalid.yaml": (
        'the undefined-variable message differs: \'`inputs.invalid` is undefined in "{{inputs.invalid}}" '
        "(the map is empty)' where Kestra logs 'Unable to find `inputs` used in the expression "
        "`{{inputs.invalid}}`'"
    ),
    "variables.yaml": (
        "setup not supported: Kestra's `globals` (configuration variables) are not built, and envs are "
        "read once per process (the runner cannot set KESTRA_TEST1/KESTRA_TEST2 for a running engine)"
    ),
}
