from analytics.entrypoints.cli import main

main()
