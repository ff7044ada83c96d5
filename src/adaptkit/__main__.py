"""`python -m adaptkit`: the same CLI as the `adaptkit` command (torchrun uses this form)."""

from adaptkit.cli import main

main()
