"""The unit tier: no PostgreSQL, Redis or RabbitMQ at all (`pytest tests/unit`)."""
