"""Closing the loop: follow-up rules and items, their SLA clock, and alerts on aggregates.

- :mod:`.rules`: what a rule matches, decided once over plain values; the checks that refuse a
  rule that can never match; the default detractor rule every project starts with.
- :mod:`.items`: a follow-up item's status machine, and every change to it, recorded with who
  and when and told to the outbox.
- :mod:`.feed`: what each channel's store committed, read from its log after the fact and
  turned into items, per-response alerts and ``response.*`` / ``followup.*`` messages, each
  batch in one transaction with the cursor that read it.
- :mod:`.sla`: due times, breaches marked and escalated once, the within-SLA report.
- :mod:`.alerts`: alerts on aggregates (a score's drop, a spike in volume), once per period.

The submodules are imported by name (``from voxloop_gateway.followups import feed``): nothing
is imported here, so that the routes, the workers and the CLI each load only what they use.
"""
