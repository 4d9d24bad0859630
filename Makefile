.PHONY: check lint layers types test bench record

check: lint layers types test

lint:
	ruff check .

layers:
	lint-imports

types:
	mypy

test:
	python3 -m pytest

bench:
	python3 bench/seq40.py
	python3 bench/seq40_memory.py
	python3 bench/cold.py
	python3 bench/throughput.py

# Golden histories for the replayer (tests/replay): record them again after a deliberate change of decisions.
record:
	python3 -m tests.replay.record
