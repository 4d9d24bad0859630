"""engine: Kestra YAML flows on an event-sourced core over NATS JetStream."""

__version__ = "0.1.0"
