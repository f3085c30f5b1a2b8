"""The read side: which responses a reader asked for, within what they may see, and written out.

``params`` turns a query string (or the CLI's flags) into a checked filter, the channels to
read and a page; ``cursor`` makes and checks the opaque place a page ends at; ``find`` reads
across the visible channels of one project; ``formats`` writes responses as JSON items, CSV and
NDJSON. The routes (``/v1/responses``, ``/v1/respondents``, ``/v1/exports``, ``/v1/stats``)
and ``voxloop-gateway export`` all go through them, so every way of reading keeps the same
rules and the same scopes.
"""
