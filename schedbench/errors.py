"""Errors that schedbench reports to users.

Every error caused by bad input is an :class:`InputError`. It carries where the problem is
(file, object as ``kind/namespace/name``, field path such as
``spec.containers[0].resources.requests.cpu``) so that the CLI can print one line naming all
three and exit with status 2, without a traceback.
"""

from __future__ import annotations


class SchedbenchError(Exception):
    """Base class of all schedbench errors."""


class InputError(SchedbenchError, ValueError):
    """Bad user input: a malformed manifest, quantity, selector, configuration or trace.

    ``str(err)`` is one line: ``FILE: OBJECT: FIELD: message`` with the parts that are known.
    Use :meth:`located` to add context as the error travels up through loaders.
    """

    def __init__(self, message: str, *, file: str | None = None, obj: str | None = None,
                 field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.obj = obj
        self.field = field

    def located(self, *, file: str | None = None, obj: str | None = None,
                field: str | None = None) -> "InputError":
        """Fill in the location parts that are still unknown; a ``field`` given here is a
        prefix of the field already recorded (``spec`` + ``containers[0]``). Returns self."""
        if file is not None and self.file is None:
            self.file = file
        if obj is not None and self.obj is None:
            self.obj = obj
        if field:
            self.field = join_field(field, self.field) if self.field else field
        return self

    def __str__(self) -> str:
        parts = [p for p in (self.file, self.obj, self.field) if p]
        one_line = " ".join(self.message.split("\n"))
        return ": ".join(parts + [one_line])


def join_field(prefix: str, suffix: str) -> str:
    """Join two field paths: ``spec`` + ``containers[0]`` -> ``spec.containers[0]``,
    ``spec.containers`` + ``[0].image`` -> ``spec.containers[0].image``."""
    if not prefix:
        return suffix
    if not suffix:
        return prefix
    if suffix.startswith("["):
        return prefix + suffix
    return prefix + "." + suffix


class QuantityError(InputError):
    """A resource quantity that is malformed, negative or out of range."""


class SelectorError(InputError):
    """A label selector, label key or label value that Kubernetes would reject."""


class ManifestError(InputError):
    """A Kubernetes manifest that cannot be loaded: bad YAML, missing or ill-typed field."""


class ConfigError(InputError):
    """An invalid KubeSchedulerConfiguration: unknown plugin, bad args, bad weight."""
