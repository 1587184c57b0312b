"""The API's routes, one module per resource; `fleet.api.app` includes their routers."""
