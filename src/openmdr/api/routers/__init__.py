"""HTTP routers of the REST API: thin translations from HTTP to the services."""
