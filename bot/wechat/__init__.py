"""The official-account door: WeChat's webhook at /wechat (blueprint in views.py)."""
