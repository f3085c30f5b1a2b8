"""The ingest pipeline: what happens to validated records on their way into a store.

``pipeline.commit`` passes them through the dedup window to their channel's store; ``votes``
holds the rules the stores apply to vote groups and email clicks, written once for both.
Nothing here imports the routes: the routes import it.
"""
