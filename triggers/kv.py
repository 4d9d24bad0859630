"""The trigger state store, as the trigger role names it: it lives in ``eventstore.triggerstate``.

Kept so that the modules outside the trigger role (the REST API, tests) importing it from here keep
working while they move to ``eventstore.triggerstate``.
"""

from __future__ import annotations

from eventstore.triggerstate import TriggerKV, key, open_trigger_kv, schedule_key, set_disabled, token

__all__ = ["TriggerKV", "key", "open_trigger_kv", "schedule_key", "set_disabled", "token"]
