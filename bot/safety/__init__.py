"""Content safety: words the operator bans never reach the model (questions) or a reader (answers).

`text` says what two texts have in common (NFKC, case-folded, separators dropped); `words` matches a
text against the list with one Aho-Corasick automaton; `stream` filters an answer that arrives in
pieces; `guard` is what the doors call; `wordfile`, `runtime` and `moderation` feed it.
"""
