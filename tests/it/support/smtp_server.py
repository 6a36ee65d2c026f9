"""A real SMTP server on 127.0.0.1 for mcpwatch's delivery tests (aiosmtpd).

Run with /usr/bin/python3 (Debian's python3-aiosmtpd installs there):

    smtp_server.py --dir D [--user U --password P] [--fail-first N --fail-reply R]

Binds 127.0.0.1 on a free port and prints `READY <port>` on stdout once it
accepts connections. Every accepted message is stored as `D/<n>.eml` (the
raw bytes) and `D/<n>.json` (envelope, received time, headers as parsed and
decoded by Python's email package, decoded plain-text body), each written
to a temp name and renamed so a reader never sees half a file.

With --user/--password, AUTH (PLAIN/LOGIN) is required and allowed over
plain SMTP (auth_require_tls=False: loopback only). With --fail-first N,
the first N DATA commands are answered with --fail-reply (e.g.
"451 4.3.0 Try again later" or "554 5.7.1 Rejected"); a file `D/fail` (its
content a full reply line) makes every DATA fail while it exists.
"""

import argparse
import asyncio
import email
import email.policy
import json
import os
import socket
import sys
import time
import warnings

# Plain-text AUTH is deliberate here (loopback test server): silence the
# warning so the tests' stderr stays readable.
warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")

try:
    from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
except ImportError:
    sys.stderr.write(
        "aiosmtpd is missing for %s: install Debian's python3-aiosmtpd "
        "(apt-get install -y python3-aiosmtpd)\n" % sys.executable
    )
    sys.exit(3)


class Store:
    def __init__(self, directory, fail_first, fail_reply):
        self.dir = directory
        self.count = 0
        self.fail_left = fail_first
        self.fail_reply = fail_reply
        self.data_commands = 0

    def _write(self, name, data):
        tmp = os.path.join(self.dir, "." + name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, os.path.join(self.dir, name))

    async def handle_DATA(self, server, session, envelope):
        self.data_commands += 1
        self._write("data_commands", str(self.data_commands).encode())
        fail_file = os.path.join(self.dir, "fail")
        if os.path.exists(fail_file):
            with open(fail_file) as f:
                return f.read().strip()
        if self.fail_left > 0:
            self.fail_left -= 1
            return self.fail_reply
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain",))
        record = {
            "received": time.time(),
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "auth_login": (
                session.auth_data.login.decode("utf-8", "replace")
                if isinstance(getattr(session, "auth_data", None), LoginPassword)
                else None
            ),
            "headers": [[k, str(v)] for k, v in msg.items()],
            "body": body.get_content() if body is not None else None,
        }
        self.count += 1
        n = self.count
        self._write("%d.eml" % n, raw)
        self._write("%d.json" % n, json.dumps(record).encode())
        return "250 2.0.0 Message accepted"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--fail-reply", default="451 4.3.0 Try again later")
    a = p.parse_args()

    store = Store(a.dir, a.fail_first, a.fail_reply)
    kwargs = {"hostname": "mcpwatch-test-smtp"}
    if a.user is not None:
        user = a.user.encode()
        password = (a.password or "").encode()

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (
                isinstance(auth_data, LoginPassword)
                and auth_data.login == user
                and auth_data.password == password
            )
            return AuthResult(success=ok, handled=False, auth_data=auth_data)

        kwargs.update(
            authenticator=authenticator,
            auth_required=True,
            auth_require_tls=False,
        )

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]

    async def serve():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SMTP(store, **kwargs), sock=sock)
        print("READY %d" % port, flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
