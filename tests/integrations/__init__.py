"""Tests of what the gateway tells other systems: the outbox, webhooks, emails."""
