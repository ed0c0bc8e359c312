"""What a person checks on a freshly converged cache host, asked of the running server."""

import re

import pytest
import redis
from conftest import CA_FILE, CONF, HOST_CA_FILE, USERS_CONF, admin, run_role, version


def test_server_runs_as_redis_and_starts_at_boot(host):
    service = host.service("redis-server")
    assert service.is_running
    assert service.is_enabled
    servers = host.process.filter(comm="redis-server")
    assert servers, "no redis-server process"
    assert {p.user for p in servers} == {"redis"}


@pytest.mark.parametrize("path", [CONF, USERS_CONF])
def test_configuration_is_root_owned_and_not_world_readable(host, path):
    config = host.file(path)
    assert config.user == "root"
    assert config.group == "redis"
    assert config.mode == 0o640


def test_password_is_stored_only_as_a_digest(host, role_vars):
    users = host.file(USERS_CONF).content_string
    assert role_vars["redis_app_password"] not in users
    assert re.search(r"^user app reset on #[0-9a-f]{64} ", users, re.MULTILINE)


def test_data_directory_is_private(host):
    data = host.file("/var/lib/redis")
    assert data.user == "redis"
    assert data.mode == 0o750


def test_listens_only_on_the_configured_addresses(host, address):
    listening = {str(s) for s in host.socket.get_listening_sockets() if str(s).endswith(":6379")}
    assert listening == {"tcp://127.0.0.1:6379", f"tcp://{address}:6379"}


def test_ping_without_credentials_is_refused(host, address):
    # RESP2 so that redis-py sends a bare PING (with RESP3 it starts with HELLO).
    client = redis.Redis(
        host=address, port=6379, protocol=2, socket_timeout=5, ssl=True, ssl_ca_certs=CA_FILE
    )
    with pytest.raises(redis.AuthenticationError, match="Authentication required"):
        client.ping()
    # The same from the host itself, over loopback, with the packaged client.
    assert "NOAUTH" in host.check_output(f"redis-cli --tls --cacert {HOST_CA_FILE} -h 127.0.0.1 PING")


def test_a_client_without_tls_is_refused_even_with_the_right_password(address, role_vars):
    with pytest.raises(redis.ConnectionError):
        admin(address, role_vars).ping()


def test_the_server_certificate_is_checked_against_the_ca(address, role_vars):
    # The system's CAs did not sign it: a client that trusts only them refuses the server.
    with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
        admin(address, role_vars, ssl=True).ping()


def test_app_user_connects_with_every_published_url(app_urls, address):
    assert set(app_urls) == {"app", "limiter", "socketio", "celery"}
    for name, url in app_urls.items():
        assert url.startswith(f"rediss://app:test-only%2Fapp%3Ap%40ss%20w%25rd@{address}:6379/")
        client = redis.Redis.from_url(url, socket_timeout=5, ssl_ca_certs=CA_FILE)
        assert client.ping() is True, name
        assert client.connection_pool.connection_kwargs["db"] == int(url.rsplit("/", 1)[1])
        client.close()


def test_app_user_can_do_what_the_app_does(app_client):
    # Cache and token blocklist: strings with a TTL.
    assert app_client.set("test:cache", "v", ex=60)
    assert app_client.get("test:cache") == b"v"
    # Flask-Limiter: Lua scripts through EVALSHA / SCRIPT LOAD.
    incr = app_client.register_script("return redis.call('incrby', KEYS[1], ARGV[1])")
    assert incr(keys=["test:limit"], args=[2]) == 2
    # Celery's broker: lists, sets, sorted sets, hashes, transactions.
    pipe = app_client.pipeline(transaction=True)
    pipe.lpush("test:queue", "job").sadd("test:bindings", "q").zadd("test:unacked", {"t": 1})
    pipe.hset("test:unacked_hash", "t", "job")
    pipe.execute()
    assert app_client.brpop(["test:queue"], timeout=1) == (b"test:queue", b"job")
    # kombu's Redis transport: a Lua script that reads the server's clock.
    clock = app_client.register_script("return redis.call('time')[1]")
    assert int(clock()) > 1_700_000_000
    # Socket.IO's message queue: pub/sub.
    pubsub = app_client.pubsub()
    pubsub.subscribe("lvd-socketio")
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"
    assert app_client.publish("lvd-socketio", "hello") == 1
    assert pubsub.get_message(timeout=5)["data"] == b"hello"
    pubsub.close()
    app_client.delete("test:cache", "test:limit", "test:bindings", "test:unacked")
    app_client.delete("test:unacked_hash")


@pytest.mark.parametrize(
    "command",
    [
        ["FLUSHALL"],
        ["FLUSHDB"],
        ["CONFIG", "GET", "maxmemory"],
        ["CONFIG", "SET", "maxmemory", "1"],
        ["KEYS", "*"],
        ["SHUTDOWN"],
        ["ACL", "LIST"],
    ],
)
def test_app_user_cannot_run_dangerous_commands(app_client, command):
    with pytest.raises(redis.exceptions.NoPermissionError):
        app_client.execute_command(*command)


@pytest.mark.parametrize("command", [["DEBUG", "SLEEP", "0"], ["MODULE", "LOAD", "/tmp/none.so"]])
def test_debug_and_modules_are_off_for_everyone(app_client, admin_client, command):
    # 7.0 and later: enable-*-command no ("... command not allowed"); 6.0 has no such
    # switch, and the role removes the commands (rename-command NAME "").
    refused = "not allowed" if version(admin_client) >= (7, 0) else "unknown command"
    with pytest.raises(redis.ResponseError, match=refused):
        admin_client.execute_command(*command)
    # The app user is refused either way (its ACL lacks MODULE too).
    with pytest.raises(redis.ResponseError, match=f"{refused}|no permissions"):
        app_client.execute_command(*command)


def test_lua_cannot_bypass_the_acl(app_client):
    # Redis 6.0, 7.0 and 8.0 word it differently.
    with pytest.raises(redis.ResponseError, match="can't run this command|no permissions"):
        app_client.eval("return redis.call('flushall')", 0)


def test_config_in_effect_is_the_config_templated(host, admin_client):
    templated = host.file(CONF).content_string
    mb = int(re.search(r"^maxmemory (\d+)mb$", templated, re.MULTILINE).group(1))
    memtotal_mb = host.ansible("setup", "filter=ansible_memtotal_mb")["ansible_facts"][
        "ansible_memtotal_mb"
    ]
    assert mb == int(memtotal_mb * 0.25)
    live = admin_client.config_get("*")
    assert int(live["maxmemory"]) == mb * 1024 * 1024
    assert live["maxmemory-policy"] == "noeviction"
    assert live["appendonly"] == "yes"
    assert live["appendfsync"] == "everysec"
    assert live["save"] == "3600 1 300 100 60 10000"
    assert live["protected-mode"] == "yes"
    if version(admin_client) >= (7, 0):
        assert live["enable-debug-command"] == "no"
        assert live["enable-protected-configs"] == "no"


def test_bad_input_is_refused_and_redis_keeps_running(host, app_client):
    before = host.file(CONF).sha256sum
    rc, output = run_role(host, "-e", "redis_maxmemory_policy=sometimes")
    assert rc != 0
    assert "redis_maxmemory_policy" in output
    assert "sometimes" in output
    assert host.file(CONF).sha256sum == before
    assert app_client.ping() is True


def test_config_that_redis_rejects_is_never_installed(host, app_client):
    before = host.file(CONF).sha256sum
    # --tags config: straight to the configuration tasks (install is done).
    rc, output = run_role(host, "--tags", "config", "-e", '{"redis_config_extra": {"hz": "fast"}}')
    assert rc != 0
    assert "FATAL CONFIG FILE ERROR" in output
    assert "hz fast" in output
    assert host.file(CONF).sha256sum == before
    assert "hz fast" not in host.file(CONF).content_string
    assert app_client.ping() is True
