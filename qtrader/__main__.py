from qtrader.cli import main

main()
