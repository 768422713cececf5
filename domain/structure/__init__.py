"""Command structure (指挥体系): campaigns, units, places, persons, responsibility (包保) and indicators/tasks."""
