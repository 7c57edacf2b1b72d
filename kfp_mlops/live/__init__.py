"""The loop on live traffic: the prediction log, its sink, labels joined to it (docs/live-loop.md)."""
