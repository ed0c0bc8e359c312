"""nginx as a user of the load balancer sees it: traffic, headers, limits, TLS."""

import uuid

import pytest
from conftest import BASE, bodies, codes_and_backends, fetch, start_backend

SECURITY_HEADERS = (
    "x-frame-options",
    "x-content-type-options",
    "referrer-policy",
    "content-security-policy",
    "permissions-policy",
    "cross-origin-opener-policy",  # nginx_extra_headers
)


def test_nginx_runs_master_as_root_and_workers_as_www_data(host):
    nginx = host.service("nginx")
    assert nginx.is_running
    assert nginx.is_enabled
    users = {p.user for p in host.process.filter(comm="nginx")}
    assert users == {"root", "www-data"}


def test_listens_on_loopback_only_by_default(host):
    assert host.socket("tcp://127.0.0.1:443").is_listening
    assert host.socket("tcp://127.0.0.1:80").is_listening
    assert not host.socket("tcp://0.0.0.0:443").is_listening


def test_config_in_effect_is_the_templated_one(host):
    dump = host.check_output("nginx -T 2>&1")
    for line in (
        "# Ansible managed",
        "upstream lvd_app {",
        "least_conn;",
        "hash $remote_addr consistent;",
        "server 127.0.0.1:9001 weight=1 max_fails=3 fail_timeout=10s;",
        "server 127.0.0.1:9002 weight=1 max_fails=3 fail_timeout=10s;",
        "keepalive 32;",
        "proxy_next_upstream error timeout http_502 http_504;",
        "limit_req_zone $lvd_ratelimit_key zone=lvd_auth:10m rate=10r/m;",
        "limit_req_status 429;",
        "server_tokens off;",
        "ssl_protocols TLSv1.2 TLSv1.3;",
        "alias /srv/lvd/current/app/static/;",
    ):
        assert line in dump, line


def test_requests_are_spread_over_both_backends(host):
    answers = codes_and_backends(host, BASE + "/", 20)
    assert {code for code, _ in answers} == {"200"}
    assert {backend for _, backend in answers} == {"9001", "9002"}


def test_upstream_connections_are_kept_alive(host):
    answers = bodies(host, BASE + "/", 30)
    assert len(answers) == 30
    # HTTP/1.1 to the backends, no "Connection: close", so connections are
    # reused: far fewer backend-side connections than requests.
    assert {a["version"] for a in answers} == {"HTTP/1.1"}
    assert {a["connection"] for a in answers} == {"-"}
    assert len({(a["backend"], a["peer"]) for a in answers}) < 30
    assert {a["forwarded_proto"] for a in answers} == {"https"}


def test_a_stopped_backend_costs_no_failed_get(host):
    host.check_output("systemctl stop lvd-test-backend@9002")
    try:
        answers = codes_and_backends(host, BASE + "/", 100)
    finally:
        start_backend(host, 9002)
    assert len(answers) == 100
    assert [code for code, _ in answers] == ["200"] * 100
    assert {backend for _, backend in answers} == {"9001"}


def test_socketio_requests_of_one_client_stick_to_one_backend(host):
    for port in (9001, 9002):
        start_backend(host, port)  # both up: stickiness, not a fallback
    url = BASE + "/socket.io/?EIO=4&transport=polling"
    answers = codes_and_backends(host, url, 12)
    assert {code for code, _ in answers} == {"200"}
    assert len({backend for _, backend in answers}) == 1


def test_websocket_upgrade_through_nginx_returns_101(host):
    cmd = (
        "curl -sk -i --http1.1 --max-time 5"
        " -H 'Connection: Upgrade' -H 'Upgrade: websocket'"
        " -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=='"
        f" '{BASE}/socket.io/?EIO=4&transport=websocket'"
    )
    out = host.run(cmd).stdout
    status_line = out.splitlines()[0]
    assert status_line.startswith("HTTP/1.1 101"), out
    assert "sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=" in out.lower()


def test_security_headers_on_every_response(host):
    missing = "/static/does-not-exist.css"
    for url in (BASE + "/", BASE + "/health", BASE + "/static/app.css", BASE + missing):
        response = fetch(host, url)
        for name in SECURITY_HEADERS:
            assert response.header(name), (url, response.status, name)
        assert response.header("strict-transport-security") == "max-age=31536000"
    assert "wss://127.0.0.1" in fetch(host, BASE + "/").header("content-security-policy")


def test_permissions_policy_turns_off_what_the_dashboard_never_uses(host):
    policy = fetch(host, BASE + "/").header("permissions-policy")
    for feature in ("camera=()", "microphone=()", "geolocation=()", "payment=()", "usb=()"):
        assert feature in policy, policy


@pytest.mark.parametrize("method", ["TRACE", "PROPFIND", "QUERY"])
def test_a_method_the_app_does_not_serve_reaches_it_only_as_a_trace_for_its_allow(host, method):
    response = fetch(host, BASE + "/api/runs", "-X", method)
    assert response.status == 405
    # The backend's own answer for the resource, asked with TRACE, never with METHOD.
    assert response.header("allow") == "GET, POST, DELETE"
    assert response.header("x-backend") in ("9001", "9002")
    assert response.header("x-method") == "TRACE"
    for name in SECURITY_HEADERS:
        assert response.header(name), name


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_the_methods_the_app_serves_reach_it_without_allow(host, method):
    response = fetch(host, BASE + "/api/runs", "-X", method)
    assert response.status == 200
    assert response.header("x-backend") in ("9001", "9002")
    assert response.header("allow") is None


@pytest.mark.parametrize(
    "path", ["/.env", "/.git/config", "/static/.htaccess", "/api/.hidden/x", "/.well-knownx"]
)
def test_dotfiles_are_denied_and_never_proxied(host, path):
    response = fetch(host, BASE + path)
    assert response.status == 403, path
    assert response.header("x-backend") is None
    for name in SECURITY_HEADERS:
        assert response.header(name), name


def test_well_known_is_proxied(host):
    response = fetch(host, BASE + "/.well-known/security.txt")
    assert response.status == 200
    assert "path=/.well-known/security.txt" in response.body


def test_metrics_only_to_the_allowed_clients(host):
    # 127.0.0.2/32 is nginx_metrics_allow (molecule.yml); 127.0.0.1 is not.
    refused = fetch(host, BASE + "/metrics")
    assert refused.status == 403
    assert refused.header("x-backend") is None
    allowed = fetch(host, BASE + "/metrics", "--interface", "127.0.0.2")
    assert allowed.status == 200
    assert "path=/metrics" in allowed.body
    # The exact path only: the app answers other paths under it itself.
    assert fetch(host, BASE + "/metrics?format=text").status == 403


def test_plain_http_redirects_to_https_with_headers(host):
    response = fetch(host, "http://127.0.0.1/some/page?x=1")
    assert response.status == 301
    assert response.header("location") == "https://127.0.0.1/some/page?x=1"
    for name in SECURITY_HEADERS:
        assert response.header(name), name
    assert response.header("strict-transport-security") is None


def test_server_header_has_no_version(host):
    assert fetch(host, BASE + "/").header("server") == "nginx"
    assert fetch(host, BASE + "/static/nope").header("server") == "nginx"


def test_text_is_gzipped(host):
    for path in ("/", "/static/app.css"):
        response = fetch(host, BASE + path, "--compressed")
        assert response.header("content-encoding") == "gzip", path
        assert response.header("vary") == "Accept-Encoding", path


def test_static_files_are_served_by_nginx_with_one_day_cache(host):
    response = fetch(host, BASE + "/static/app.css")
    assert response.status == 200
    assert (
        response.body.strip()
        == host.file("/srv/lvd/current/app/static/app.css").content_string.strip()
    )
    assert response.header("x-backend") is None
    assert response.header("cache-control") == "max-age=86400"


def test_health_is_proxied_but_not_logged(host):
    health_marker, page_marker = uuid.uuid4().hex, uuid.uuid4().hex
    assert fetch(host, f"{BASE}/health?probe={health_marker}").status == 200
    assert fetch(host, f"{BASE}/?probe={page_marker}").status == 200
    log = host.file("/var/log/nginx/access.log").content_string
    assert page_marker in log
    assert health_marker not in log


def test_access_log_has_request_and_upstream_times(host):
    marker = uuid.uuid4().hex
    fetch(host, f"{BASE}/?timing={marker}")
    line = next(
        line
        for line in host.file("/var/log/nginx/access.log").content_string.splitlines()
        if marker in line
    )
    assert " rt=" in line
    assert ' urt="' in line
    assert ' ua="127.0.0.1:900' in line


def test_eleventh_auth_request_in_a_minute_gets_429(host):
    answers = codes_and_backends(host, BASE + "/auth/login", 11)
    codes = [code for code, _ in answers]
    assert codes[:10] == ["200"] * 10
    assert codes[10] == "429"
    rejected = fetch(host, BASE + "/auth/login")
    assert rejected.status == 429
    for name in SECURITY_HEADERS:
        assert rejected.header(name), name


def test_allowlisted_client_is_not_rate_limited(host):
    # 127.0.0.2/32 is in nginx_ratelimit_exempt_cidrs (molecule.yml).
    answers = codes_and_backends(host, BASE + "/auth/login", 20, "--interface", "127.0.0.2")
    assert [code for code, _ in answers] == ["200"] * 20


def test_tls_offers_1_2_and_1_3_only(host):
    assert host.run(f"curl -sk --tlsv1.2 --tls-max 1.2 -o /dev/null {BASE}/").rc == 0
    assert host.run(f"curl -sk --tlsv1.3 -o /dev/null {BASE}/").rc == 0
    # The client side allows anything (security level 0): only nginx refuses.
    old = host.run(
        "openssl s_client -connect 127.0.0.1:443 -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' </dev/null"
    )
    assert old.rc != 0
    assert "Cipher is (NONE)" in old.stdout or "alert" in old.stderr


def test_tls_key_is_readable_by_root_only(host):
    key = host.file("/etc/nginx/tls/lvd.key")
    assert key.user == "root"
    assert key.mode == 0o600


def test_logrotate_policy_is_valid(host):
    assert host.file("/etc/logrotate.d/nginx").contains("Ansible managed")
    host.check_output("logrotate --debug /etc/logrotate.d/nginx")
