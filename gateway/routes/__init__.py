"""The routes, one module per part of the API: what each answers, not how HTTP is spoken.

``events`` (ingest and its CORS preflight), ``stats``, ``email_links`` (``/r/{token}``),
``ops`` (health, readiness, metrics, the OpenAPI document, built by ``openapi``) and ``demo``.
The read side's routes (responses, exports, the dashboard) and the inbox's come next to them.
"""
