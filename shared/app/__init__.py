"""Everything that knows `azure.functions` or argv: the runtime built once per process, the blob drop, the
HTTP import and its body checks, health, and the command line. It wires the adapters into the pipeline.

May import every other folder; nothing imports it but `function_app.py` and `shared/__main__.py`.
"""
