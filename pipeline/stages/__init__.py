"""Stages: one module per workflow rule, files in and files out (the only code that opens the stage's files).

The older stages still live in ``pipeline.apps`` and the packages' orchestration modules;
the model stages (``train``, ``evaluate``) are the first ones here.
"""
