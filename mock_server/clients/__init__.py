"""The HTTP clients, one layer beneath the contract kit, ``kontext-mock record`` and the
command line, which import it and not each other (``tests/test_layers.py`` holds both).

- :mod:`~kontext_mock.clients.control`: a client of a running mock's control plane (``/_mock``);
- :mod:`~kontext_mock.clients.api`: a client of the sessions API (credentials, the request
  budget, ``Retry-After``, a record of every exchange);
- :mod:`~kontext_mock.clients.pacing`: staying within a rate limit;
- :mod:`~kontext_mock.clients.errors`: what the API client raises.

Nothing is imported here: each command loads only the client it uses.
"""
