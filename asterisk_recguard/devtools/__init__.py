"""Tools to try and test recguard: the sandbox Asterisk, simulated callers, the demo.

No runtime module imports them; only the `recguard sandbox` and `recguard demo`
commands and the tests do (tests/unit/test_import_direction.py checks it).
"""
