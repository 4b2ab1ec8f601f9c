"""The HTTP server, apart from the API it serves: HTTP/1.1 over httptools
(``server.py``), the one request and answer model (``exchange.py``), WSGI at its edges
(``wsgi.py``) and request ids (``requestids.py``). Nothing here imports the API's modules
(``tests/test_layers.py``); the API's modules import these.
"""
