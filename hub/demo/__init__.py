"""`opshub demo`: a made-up product organisation in fakes of the seven tools, synced and served.

- hub/demo/org.py          the organisation (pure, deterministic from a seed and a date)
- hub/demo/fakes.py        puts it into the fakes (the `fakes` package, shipped with the hub)
- hub/demo/environment.py  serves the fakes, writes their sources config, syncs, creates keys
- hub/demo/trickle.py      moves items in the fakes and sends the tools' signed webhooks
- hub/demo/run.py          the command: all of the above, then the API until Ctrl-C

For tests: `seed_demo(database_url)` builds the dataset into a database and returns a read and
an admin key; `demo_environment(store, workdir)` keeps the fakes answering while it lasts.
"""

from hub.demo.environment import DemoEnvironment, DemoKeys, demo_environment, seed_demo

__all__ = ["DemoEnvironment", "DemoKeys", "demo_environment", "seed_demo"]
