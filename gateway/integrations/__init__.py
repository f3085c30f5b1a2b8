"""What the gateway tells other systems: the outbox, webhooks, emails, and the jobs that send them.

Everything that others must hear of is written to the control plane's outbox in the
transaction of its cause (:mod:`.outbox`); workers deliver it later, at least once, each
message with one stable id, and periodic work runs once across replicas (:mod:`.jobs`).
"""
