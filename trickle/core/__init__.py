"""The domain: money, events, storage, ingestion, ledger and settlement.

Nothing in here knows about HTTP, the scheduler or the command line.
"""
