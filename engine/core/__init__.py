"""The pure core: the flow model, events, the fold (``evolve``), ``accept`` and the decider.

Imports only the standard library's pure modules, msgspec and itself: no I/O, no clock, no
randomness, no environment. Time, ids and everything a template may ask for come in as
arguments (``engine.core.ports``), so the same history always decides the same thing.
"""
