"""The mock over HTTP: the specs' routes and handlers, the request pipeline, its own
HTTP/1.1 server, and in-process transports. It sits on ``kontext_mock.core``."""
