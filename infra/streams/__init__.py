"""Event streams for downstream systems: the Kafka relay, CloudEvents envelopes, broker helpers, the published contract and lag status."""
