"""`python -m bench`: every figure of SPEC §7 in one table (see bench.suite)."""

import asyncio

from bench.suite import main

asyncio.run(main())
