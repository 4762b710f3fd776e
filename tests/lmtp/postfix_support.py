"""A private Postfix instance for tests, configured in a temporary folder.

The system's Postfix configuration (``/etc/postfix``) is never read or
changed: the instance has its own ``main.cf`` and ``master.cf`` in a
temporary folder, passed with ``postfix -c DIR``, its own queue and data
directories there, an ``smtpd`` on a loopback port and no other listener.
The master runs in the foreground (``postfix start-fg``) as a child
process of the test, which stops it.  Mail for ``example.org`` goes to
exchmail through ``virtual_transport = lmtp:...``; anything else fails
(``default_transport = error``), so nothing leaves the machine.

Postfix needs root to start (it switches to the ``postfix`` user), as in
CI; the tests that use it are skipped otherwise.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {dir}/queue
data_directory = {dir}/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.example.org
mydomain = example.org
myorigin = example.org
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = permit_mynetworks, reject
smtpd_reject_unlisted_recipient = no
virtual_mailbox_domains = example.org
virtual_transport = {transport}
default_transport = error:no mail leaves a test
relay_transport = error:no mail leaves a test
alias_maps =
alias_database =
local_recipient_maps =
smtputf8_enable = no
biff = no
maillog_file = {dir}/maillog
maillog_file_prefixes = {dir}
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
"""

MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def postfix_available() -> str | None:
    """Why Postfix cannot run here, or ``None`` if it can."""
    if shutil.which("postfix") is None or not Path("/usr/lib/postfix/sbin/master").exists():
        return "Postfix is not installed (apt-get install postfix)"
    if os.geteuid() != 0:
        return "a private Postfix instance needs root"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivatePostfix:
    """A Postfix instance in ``folder`` delivering ``example.org`` to ``transport``.

    :param transport: e.g. ``lmtp:inet:127.0.0.1:2424`` or ``lmtp:unix:/path``.
    """

    def __init__(self, folder: Path, transport: str) -> None:
        self.folder = folder
        self.config = folder / "etc"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.config.mkdir(parents=True)
        (folder / "queue").mkdir()
        (folder / "data").mkdir()
        shutil.chown(folder / "data", "postfix")
        (self.config / "main.cf").write_text(MAIN_CF.format(dir=folder, transport=transport))
        (self.config / "master.cf").write_text(MASTER_CF.format(port=self.port))

    def start(self, timeout: float = 30.0) -> None:
        """Create the queue and start the master; return once smtpd answers."""
        # check creates the queue's subfolders with Postfix's owners and modes.
        subprocess.run(
            ["postfix", "-c", str(self.config), "check"], check=True, capture_output=True, timeout=60
        )
        self.process = subprocess.Popen(
            ["postfix", "-c", str(self.config), "start-fg"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Postfix did not start; its log:\n{self.log()}")

    def log(self) -> str:
        path = self.folder / "maillog"
        return path.read_text(errors="replace") if path.exists() else "(no log)"

    def stop(self) -> None:
        """Stop the master (and so every Postfix process of this instance)."""
        if self.process is None:
            return
        subprocess.run(["postfix", "-c", str(self.config), "stop"], capture_output=True, timeout=60)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None
