"""Running the whole system on one machine: `dudao run`, the process supervisor, the embedded PostgreSQL and Kafka servers."""
