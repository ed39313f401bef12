"""Records and configuration: the vocabulary every layer speaks.

Owns the records (`RawRow`, `Indicator`, `Outcome`, `FileProblem`, statuses), the app-wide `Settings`,
batching, the error taxonomy and JSON error wording. Pure: standard library only, no I/O. Must not import
any other folder of `shared`, nor `azure.*` or `requests`.
"""
