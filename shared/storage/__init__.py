"""Azure Storage adapters: blobs in and out, report upload, idempotency, the tenant lock.

The only layer that talks to Azure Storage. Imports `core/` only (and the Azure SDK).
"""
