"""The tasks the entry points run once their config is validated: :mod:`.train` (train.py) and
:mod:`.evaluate` (evaluate.py). Each imports Lightning; :mod:`vae_gjs.cli` imports them only
after validation."""
