from srnpose.cli import main

raise SystemExit(main())
