"""One module per ``srnpose`` subcommand: ``add_arguments(parser)`` and ``run(args) -> int``."""
