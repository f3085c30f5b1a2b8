"""How the gateway speaks HTTP, whatever the route: who is asking (``auth``), CORS (``cors``),
bodies (``body``), rate limits (``limits``, ``shared_limits``), JSON answers (``responses``),
``/metrics`` (``metrics``) and what the access log may show (``access_log``).
"""
