"""The ``/api/v1`` routes, one module per resource; each exports ``ROUTES`` (``webserver.app`` mounts them).

A route module imports ``webserver.http`` and the other helper modules, never another route module.
"""
