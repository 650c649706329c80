"""The HTTP + WebSocket gateway (SPEC section 9)."""

from engine.gateway.app import create_app
from engine.gateway.server import GatewayServer, RefusedBind, gateway_server

__all__ = ["GatewayServer", "RefusedBind", "create_app", "gateway_server"]
