"""Records and configuration: the vocabulary every layer speaks.

Owns the records (`RawRow`, `Indicator`, `Outcome`, `FileProblem`, statuses), the app-wide `Settings`,
batching, the error taxonomy and JSON error wording, and the vocabularies more than one layer reads:
`text` (trimming, wrapping pairs, the refang table), `vocab` (yes/no words, legacy actions, type groups,
the URL-scheme rule) and `times` (the ISO parser and the UTC format). Pure: standard library only, no I/O.
Must not import any other folder of `shared`, nor `azure.*` or `requests`.
"""
