from aggregator.entrypoints.cli import main

main()
