"""`python -m bot` runs the console script. May import: bot.cli."""

from bot.cli import main

main()
