"""Ratings that fail safe (issue 12): unknown commands are never SAFE, the families that administer
the machine are rated as such, a command run by another is rated by what it runs, inline code is
HIGH, and command names and targets are resolved as bash would before they are rated."""

import pytest

from terminal.policy import Level, decide
from terminal.risk import Risk, Trait, assess

S, M, H, D = Risk.SAFE, Risk.MODERATE, Risk.HIGH, Risk.DANGEROUS
DEV = "/dev/autobot-test-none"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # unknown commands
        ("frobnicate --all", M),
        ("some-new-tool", M),
        ("ls -la", S),
        ("f() { echo hi; }; f", S),
        # users and groups
        ("userdel bob", H),
        ("passwd -d root", H),
        ("usermod -aG sudo bob", D),
        ("useradd -o -u 0 evil", D),
        # containers
        ("docker run --privileged -v /:/h alpine", D),
        ("docker run -v /var/run/docker.sock:/s alpine", D),
        ("docker run --pid=host alpine", D),
        ("docker ps", S),
        ("docker rm -f web", H),
        (f"docker exec web mkfs.ext4 {DEV}", D),
        ("kubectl exec -it web -- rm -rf /", D),
        # files
        ("install -m 4755 x ./x", H),
        ("tar xf evil.tar -C /", H),
        ("truncate -s0 /var/log/auth.log", H),
        ("find / -type f -exec rm -f {} +", D),
        ("find . -name '*.pyc' -exec rm {} +", M),
        ("find /etc -ok rm {} ;", D),
        # kernel, mounts, boot, firewall, services
        ("modprobe evil", H),
        ("sysctl -w kernel.sysrq=1", H),
        ("mount /dev/sdb1 /mnt", H),
        ("swapoff -a", H),
        ("grub-install /dev/sda", D),
        # commands run by other commands
        ("ssh host rm -rf /", D),
        ("watch rm -rf /", D),
        ("timeout 5 rm -rf /", D),
        ("nohup rm -rf / &", D),
        ("nice -n 5 rm -rf /", D),
        ("flock /tmp/l rm -rf /", D),
        ("sudo -u bob rm -rf /", D),
        ("script -c 'rm -rf /' log", D),
        ("env -S 'rm -rf /'", D),
        ("busybox rm -rf /", D),
        ("echo / | xargs rm -rf", H),
        ("parallel rm -rf ::: /", D),
        ("parallel gzip ::: a.txt b.txt", S),
        # databases: the red-team's way to staff was SQL on the server's database
        ("sqlite3 var/db.sqlite3 \"update auth_user set is_staff=1 where username='me'\"", H),
        ("sqlite3 var/db.sqlite3 'select key from django_session'", S),
        ("sqlite3 app.db <<'EOF'\ndelete from django_session;\nEOF", H),
        ("psql -c 'drop table notes' app", H),
        ("mysql -e 'insert into notes values (1)' app", M),
        # inline interpreter code
        ("python3 -c 'import os'", H),
        ("perl -e 'unlink q(x)'", H),
        ("ruby -e 'puts 1'", H),
        ("node -e 'process.exit()'", H),
        ("php -r 'echo 1;'", H),
        ("lua -e 'print(1)'", H),
        ("awk 'BEGIN { system(\"id\") }'", H),
        ("awk '{ print | \"sh\" }' f", H),
        ("python3 <<'EOF'\nimport os\nEOF", H),
        ("python3 script.py", M),
        # names resolved as bash resolves them
        (f"/usr/sbin/mkf?.ext4 {DEV}", D),
        ("/bin/r[m] -rf /", D),
        ("/usr/bin/r* -rf /tmp/x", D),  # could be reboot
        ("/usr/../tmp/x.sh", M),
        ("cd /dev; mkfs.ext4 autobot-test-none", D),
        ("cd /dev && dd if=/dev/zero of=autobot-test-none", D),
        (f"x={DEV}; dd if=/dev/zero of=$x", D),
        (f"x={DEV}; echo hi > $x", D),
        ("x=rm; $x -rf /", D),
        ("cd / && rm -rf *", D),
        ("cd /tmp && ls", S),
        ("ln -s /dev/autobot-test-none d; mkfs.ext4 d", D),
        ("ln -sf /dev disks && dd if=/dev/zero of=disks/autobot-test-none", D),
        ("ln -s /etc e; rm -rf e/*", D),
        ("ln -s notes.txt n; cat n", S),
        ("echo '$x'", S),
    ],
)
def test_fail_safe_ratings(line, expected):
    result = assess(line)
    assert result.risk == expected, result.reasons


def test_an_unknown_command_says_why_it_is_not_safe():
    assert assess("frobnicate").reasons == ("frobnicate: a command the rules do not know, so it is not rated SAFE",)


def test_a_program_path_with_dots_is_a_script_outside_the_system_folders():
    assert Trait.SCRIPT_FILE in assess("/usr/../tmp/x.sh").traits


def test_relative_paths_are_judged_under_the_directory_the_caller_gives():
    assert assess("mkfs.ext4 autobot-test-none", cwd="/dev").risk is D
    assert assess("mkfs.ext4 autobot-test-none").risk is M


@pytest.mark.parametrize("line", ["vim notes.txt", "python3 script.py", "git status", "make", "ls | grep x"])
def test_ordinary_work_stays_allowed_at_restricted(line):
    assert not decide(Level.RESTRICTED, assess(line)).blocked


@pytest.mark.parametrize("line", ["python3 -c 'print(1)'", "userdel bob", "docker run --privileged alpine"])
def test_inline_code_and_administration_are_blocked_at_restricted(line):
    assert decide(Level.RESTRICTED, assess(line)).blocked
