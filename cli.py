"""Run the districting command line from a source checkout: ``python cli.py --help``."""

from districting.cli import main

if __name__ == "__main__":
    main()
