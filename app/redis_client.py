"""The app's Redis connection (cache, token blocklist), one client per Flask app."""

import redis
from flask import Flask, current_app


class RedisClient:
    """Proxy to the current app's redis.Redis, created from REDIS_URL with short timeouts.

    Short socket timeouts are what lets callers degrade quickly when Redis is down
    instead of holding a request thread.
    """

    def init_app(self, app: Flask) -> None:
        app.extensions["redis"] = redis.Redis.from_url(
            app.config["REDIS_URL"],
            socket_connect_timeout=app.config["REDIS_SOCKET_TIMEOUT"],
            socket_timeout=app.config["REDIS_SOCKET_TIMEOUT"],
            health_check_interval=30,
            decode_responses=True,
        )

    @property
    def client(self) -> redis.Redis:
        return current_app.extensions["redis"]

    def __getattr__(self, name: str):
        return getattr(self.client, name)
