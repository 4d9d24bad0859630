"""The throughput benchmark's watcher, in a process of its own: ``python bench/_watcher.py URL``.

It follows every execution's events (``ev.>``) and prints one line per execution that ends:
``<execution id> <state> <taskruns>``, where taskruns counts the taskruns its history recorded
terminal. It prints ``ready`` once subscribed and stops when its standard input closes.

Apart, because decoding every event of every execution is the work of a client watching, not of
the engine: in the engine's process it took 5-6 % of the samples (``on_event`` and the delivery of
1.2 messages per taskrun), counted against the engine.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nats
from nats.aio.msg import Msg

from engine.core import events as ev
from engine.core.states import TERMINAL, State


async def watch(url: str) -> None:
    nc = await nats.connect(servers=url.split(","))
    taskruns: dict[str, int] = {}
    out = sys.stdout

    async def on_event(msg: Msg) -> None:
        eid = msg.subject.split(".", 2)[2]
        for event in ev.decode(msg.data):
            if isinstance(event, ev.TaskRunStateChanged) and State(event.state) in TERMINAL:
                taskruns[eid] = taskruns.get(eid, 0) + 1
            elif isinstance(event, ev.ExecutionStateChanged) and State(event.state) in TERMINAL:
                out.write(f"{eid} {event.state} {taskruns.pop(eid, 0)}\n")
                out.flush()

    await nc.subscribe("ev.>", cb=on_event)
    await nc.flush()
    out.write("ready\n")
    out.flush()
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the benchmark closes our stdin
    await nc.drain()


if __name__ == "__main__":
    asyncio.run(watch(sys.argv[1]))
