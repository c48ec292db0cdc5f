from automnist.cli import main

raise SystemExit(main())
