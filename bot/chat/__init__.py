"""The chat core shared by every door: dialogue rules, usage estimate, upstream providers.

Plain Python: nothing here imports Flask.
"""
