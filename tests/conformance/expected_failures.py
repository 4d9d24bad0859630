"""Known conformance failures: case id -> the reason the runner reported (generated from a run).

A case listed here is ``xfail(strict=True)``: if it starts passing, the test run fails until the
entry is removed. Regenerate with ``python3 bench/conformance.py --expected-failures``.
"""

EXPECTED_FAILURES: dict[str, str] = {}
