"""Defender's rules, applied to one row at a time: normalise, the value and field rules, validate.

One `RawRow` becomes one or more `Outcome`s. Pure: imports `core/` only; never `azure.*`, `requests`, or
any adapter (`defender/`, `storage/`, `app/`).
"""
