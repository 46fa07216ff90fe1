"""Redis-backed state: API keys and their balances, follower histories, replies, limits.

Plain Python: nothing here imports Flask.
"""
