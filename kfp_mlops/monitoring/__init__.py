"""Monitoring: a batch against the production model's reference data; retrain or not."""
