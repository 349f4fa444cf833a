"""`python -m trustdiff` — same as the `trustdiff` command."""

from trustdiff.cli.main import main

main()
