"""Memory at the edges: the dual-layer cache, the layout store, the blob store and the rule store.

Each store is a small interface with an embedded default that needs no server, and a production
backend (Redis, MongoDB Atlas, S3/R2) chosen by settings.
"""
