"""Service-provider adapters: connect a node to a provider's request portal or API."""
