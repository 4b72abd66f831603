"""Test support shared by the test packages: real RabbitMQ sessions and a TCP proxy."""
