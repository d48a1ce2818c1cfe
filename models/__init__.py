"""Torch estimators: the context module, the theorem-matched estimator, trainer and metrics.

Filled by the models issue. See DESIGN.md section 3.
"""
