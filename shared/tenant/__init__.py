"""What the tenant holds and what to do about it (quota stewardship).

Pure decisions: `records` (what List returned), `delta` (unchanged, update, conflict), `capacity` (room, margin
and priority), `ownership` (the app's mark, feed sync), `feeds` (the feeds folder convention), `mirror` (the
tenant mirror's format and when it must be refreshed), `drain` (the view of one turn of the tenant lock, its
room and drift signals). `steward` applies the decisions through a client Protocol, `session` starts it for one
input, `mirrored` reads and writes the mirror through a store Protocol. Imports `core/` only; never `azure.*`,
`requests`, `defender/`, `storage/` or `app/`.
"""
