"""Use cases of the shorten service: links, API keys, the outbox relay, read-your-writes visibility."""
