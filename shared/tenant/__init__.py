"""What the tenant holds and what to do about it (quota stewardship).

Pure decisions: `records` (what List returned), `delta` (unchanged, update, conflict), `capacity` (room and
priority), `ownership` (the app's mark, feed sync), `feeds` (the feeds folder convention). `steward` applies
the decisions through a client Protocol and `session` starts it for one input. Imports `core/` only; never
`azure.*`, `requests`, `defender/`, `storage/` or `app/`.
"""
