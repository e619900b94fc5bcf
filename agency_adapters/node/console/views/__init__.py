"""The console's views, one module per area; the route table is ``console/routes.py``."""
