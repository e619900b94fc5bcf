"""The node console: a web application for the people at one agency node.

It runs at the node because only the node holds the keys that open its messages:
``hub node console --node DIR``. Server-rendered (aiohttp + Jinja2, GOV.UK Design System),
working without JavaScript.
"""

from agency_adapters.node.console.app import create_console_app
from agency_adapters.node.console.services import NodeServices
from agency_adapters.node.console.settings import ConsoleSettings, ConsoleSettingsError

__all__ = ["ConsoleSettings", "ConsoleSettingsError", "NodeServices", "create_console_app"]
