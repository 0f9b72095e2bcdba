"""One module per ``recguard`` subcommand; each exposes ``register(subparsers)``."""
