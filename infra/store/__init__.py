"""The event store (PostgreSQL via eventsourcing), the projector that feeds the read models, and evidence uploads."""
