"""The loop on live traffic: the prediction log, its sink, labels joined to it.

See docs/live-loop.md.
"""
