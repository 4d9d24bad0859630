"""Private implementation of engine.expressions (Pebble on Jinja2)."""
