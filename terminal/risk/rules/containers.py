"""Containers and clusters: docker/podman, kubectl. A privileged container, or one given the host's
root or the docker socket, is root on the host."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from terminal.risk.model import Cmd, Hit, Risk
from terminal.risk.paths import is_critical, norm_path
from terminal.risk.registry import RUNS_UNSEEN, register

if TYPE_CHECKING:
    from terminal.risk.walker import _Walker


_READ_VERBS = {"ps", "images", "image", "logs", "inspect", "version", "info", "stats", "top", "port", "diff",
               "history", "search", "events", "get", "describe", "explain", "api-resources", "config", "help",
               "ls", "list", "container", "volume", "network", "context", "cluster-info", "auth"}
_DESTRUCTIVE = {"rm", "rmi", "kill", "stop", "prune", "system", "delete", "drain", "cordon", "taint", "scale",
                "replace", "patch", "rollout", "uncordon", "down"}
# options of `docker run` that take a value
_RUN_VALUES = set("aceEhlmpuvw") | {"name", "volume", "mount", "env", "user", "workdir", "network", "net", "pid",
                                    "ipc", "uts", "userns", "cap-add", "device", "security-opt", "entrypoint", "label",
                                    "publish", "platform", "memory", "cpus", "hostname", "add-host", "env-file"}
_HOST_NAMESPACES = re.compile(r"^--(pid|net|network|ipc|uts|userns)=host$|^--cap-add=(all|sys_admin|sys_module)$", re.I)


def _verb(args: list[str]) -> tuple[str, int]:
    for n, a in enumerate(args):
        if not a.startswith("-"):
            return a, n
    return "", len(args)


def _mounts_host(value: str) -> bool:
    source = value.split(":", 1)[0] if ":" in value else re.sub(r".*(?:source|src)=([^,]*).*", r"\1", value)
    path = norm_path(source)[0]
    return is_critical(path) or "docker.sock" in path or path.startswith("/var/run")


def _run(args: list[str]) -> Iterator[Hit]:
    words = list(args)
    values = [v for n, a in enumerate(words[:-1]) if a.lstrip("-") in {"v", "volume", "mount"} for v in [words[n + 1]]]
    values += [a.split("=", 1)[1] for a in words if a.startswith(("--volume=", "--mount=", "-v="))]
    if "--privileged" in words or any(_HOST_NAMESPACES.match(a) for a in words) or any(map(_mounts_host, values)):
        yield Hit(Risk.DANGEROUS, "a privileged container or one given the host's root, namespaces or docker socket")
    else:
        yield Hit(Risk.MODERATE, "starts a container")


def _container(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    verb, n = _verb(cmd.args)
    rest = cmd.args[n + 1 :]
    if verb in {"container", "compose"} and rest:  # `docker container run …`
        verb, k = _verb(rest)
        rest = rest[k + 1 :]
    if verb in {"run", "create"}:
        yield from _run(rest)
    elif verb == "exec":
        yield from _exec(rest, cmd, w)
    elif verb in _DESTRUCTIVE:
        yield Hit(Risk.HIGH, f"{cmd.name} {verb} stops, deletes or changes running workloads")
    elif verb in {"apply", "create", "edit", "set", "label", "annotate", "build", "pull", "push", "cp", "start",
                  "restart", "up", "load", "import", "commit", "tag", "login", "attach", "port-forward", "debug"}:
        yield Hit(Risk.MODERATE, f"{cmd.name} {verb} changes images, containers or cluster objects")
    elif verb and verb not in _READ_VERBS:
        yield Hit(Risk.MODERATE, f"{cmd.name} {verb}: a container command the rules do not know")


def _exec(rest: list[str], cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """`docker exec [opts] CONTAINER CMD…`, `kubectl exec POD [-c C] -- CMD…`: judged as CMD."""
    if "--" in rest:
        inner = rest[rest.index("--") + 1 :]
    else:
        k = 0
        while k < len(rest) and rest[k].startswith("-"):
            k += 2 if rest[k] in {"-e", "-u", "-w", "--env", "--user", "--workdir", "-c", "-n"} else 1
        inner = rest[k + 1 :]
    if inner:
        yield Hit(Risk.MODERATE, "runs a command inside a container")
        yield from w.run_argv(inner, cmd)


register("docker", "podman", "nerdctl", "kubectl", "oc", "crictl", "ctr", family="containers", check=_container,
         input_args=RUNS_UNSEEN,
         summary="`run --privileged`, host root, namespaces or docker socket DANGEROUS; rm/kill/stop/delete/drain/"
                 "scale HIGH; other changes MODERATE; `exec CMD` judged as CMD; listing SAFE",
         benign={"docker ps": Risk.SAFE, "kubectl get pods": Risk.SAFE},
         harmful={"docker rm -f web": Risk.HIGH, "docker run --privileged -v /:/h alpine": Risk.DANGEROUS,
                  "kubectl exec web -- rm -rf /": Risk.DANGEROUS})
