"""What connector authors and trickle's own tests import.

- :mod:`trickle.testing.fakeplatform`: serve a made-up or imitated platform
  API on 127.0.0.1, with latency injection and a log that catches two
  requests for one account overlapping.
- :mod:`trickle.testing.fake_github`: GitHub's starring API, as the demo,
  the end-to-end tests and the benchmarks use it.
- :mod:`trickle.testing.contract`: the contract suite every connector must
  pass (needs pytest).
"""

from trickle.testing.fakeplatform import FakePlatform, FakeResponse, Request

__all__ = ["FakePlatform", "FakeResponse", "Request"]
