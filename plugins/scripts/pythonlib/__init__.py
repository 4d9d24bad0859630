"""What a Python script finds on its ``PYTHONPATH``: the ``kestra`` module (``from kestra import Kestra``).

This directory is put on the path of every Python script task (and ``kestra.py`` is written beside the
script of the older ``io.kestra.core.tasks.scripts.Python``), so Kestra's scripts import it unchanged.
Its modules run in the script's interpreter: they import the standard library only.
"""

from __future__ import annotations

from pathlib import Path

DIRECTORY = Path(__file__).resolve().parent
KESTRA_MODULE = DIRECTORY / "kestra.py"
