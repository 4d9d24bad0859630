.PHONY: check lint types test bench

check: lint types test

lint:
	ruff check .

types:
	mypy

test:
	python3 -m pytest

bench:
	python3 bench/seq40.py
	python3 bench/cold.py
	python3 bench/throughput.py
