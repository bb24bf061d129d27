from bananas.server import main

main()
