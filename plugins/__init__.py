"""Task plugins, registered through the ``engine.plugins`` entry-point group."""
