"""Drift and skew of live traffic: the model server's request log against the served model's training statistics.

`bert-imdb-drift` (`cli.py`) and the `DriftReport` TFX component (`component.py`) read the masked request log over a
time window (`request_log.py`, `window.py`), compute TFDV statistics of the features training saw
(`statistics.py`), find the training statistics through ML Metadata (`lineage.py`), compare with TFDV's L-infinity
and Jensen-Shannon comparators (`compare.py`) and write a report (`report.py`, `plot.py`).
"""
