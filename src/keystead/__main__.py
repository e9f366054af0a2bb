from keystead.cli import main

raise SystemExit(main())
