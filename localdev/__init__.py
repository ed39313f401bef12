"""Local stand-ins for the services the app talks to: the Defender for Endpoint indicators API and the
App Service managed identity endpoint.

Standard library only, loopback only, so they start in milliseconds inside a test process or as
``python -m localdev.defender_emulator`` / ``python -m localdev.identity_emulator``.
"""
