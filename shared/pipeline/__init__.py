"""One input, end to end: read → check → review → submit → report (`process`), the report writers
(`reports`), and what every run needs whatever its source (`job`).

Imports `core/`, `readers/`, `checks/` and `tenant/`; never `azure.*`, `requests`, `defender/`, `storage/` or
`app/` (collaborators are handed in).
"""
