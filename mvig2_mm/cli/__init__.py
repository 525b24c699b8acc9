"""Command-line support of ``tools/``: what the launchers share (config
loading, pre-flight checks of data and checkpoints, running the Runner with
one-line errors) and the model building of the export tools. Nothing here is
needed to build or run a model from a config."""
