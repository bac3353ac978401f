from trainact.cli import main

raise SystemExit(main())
